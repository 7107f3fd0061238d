package grpc

import (
	"fastgate/core"
	"fastgate/core/config"
)

// Builder is a core.TerminalBuilder. (Being built.)
type Builder struct{}

var _ core.TerminalBuilder = (*Builder)(nil)

// Key returns nil: not built yet.
func (*Builder) Key(cfg *config.Config, rc *config.Route) any { return nil }

// Validate checks nothing yet.
func (*Builder) Validate(e *core.Env) error { return nil }

// Build builds nothing yet.
func (*Builder) Build(e *core.Env) (core.Terminal, error) { return nil, nil }
