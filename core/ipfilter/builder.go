package ipfilter

import (
	"fastgate/core"
	"fastgate/core/config"
)

// Builder is a core.FilterBuilder. (Being built.)
type Builder struct{}

var _ core.FilterBuilder = Builder{}

// Key returns nil: not built yet.
func (Builder) Key(cfg *config.Config, rc *config.Route) any { return nil }

// Validate checks nothing yet.
func (Builder) Validate(e *core.Env) error { return nil }

// Build builds nothing yet.
func (Builder) Build(e *core.Env) (core.Filter, error) { return nil, nil }
