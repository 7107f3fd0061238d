package headers

import (
	"fastgate/core"
	"fastgate/core/config"
)

// Transforms is a core.FilterBuilder for routes' headers. (Being built.)
type Transforms struct{}

// Security is a core.FilterBuilder for security_headers. (Being built.)
type Security struct{}

var (
	_ core.FilterBuilder = Transforms{}
	_ core.FilterBuilder = Security{}
)

// Key returns nil: not built yet.
func (Transforms) Key(cfg *config.Config, rc *config.Route) any { return nil }

// Validate checks nothing yet.
func (Transforms) Validate(e *core.Env) error { return nil }

// Build builds nothing yet.
func (Transforms) Build(e *core.Env) (core.Filter, error) { return nil, nil }

// Key returns nil: not built yet.
func (Security) Key(cfg *config.Config, rc *config.Route) any { return nil }

// Validate checks nothing yet.
func (Security) Validate(e *core.Env) error { return nil }

// Build builds nothing yet.
func (Security) Build(e *core.Env) (core.Filter, error) { return nil, nil }
