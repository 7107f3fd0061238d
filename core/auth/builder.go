package auth

import (
	"log/slog"

	"fastgate/core"
	"fastgate/core/config"
)

// Options configure a Builder.
type Options struct {
	Logger *slog.Logger
}

// Builder is a core.FilterBuilder. (Being built.)
type Builder struct{ opts Options }

// NewBuilder returns a Builder.
func NewBuilder(o Options) *Builder { return &Builder{opts: o} }

var _ core.FilterBuilder = (*Builder)(nil)

// Key returns nil: not built yet.
func (b *Builder) Key(cfg *config.Config, rc *config.Route) any { return nil }

// Validate checks nothing yet.
func (b *Builder) Validate(e *core.Env) error { return nil }

// Build builds nothing yet.
func (b *Builder) Build(e *core.Env) (core.Filter, error) { return nil, nil }

// Close stops the builder's background work (JWKS refreshes).
func (b *Builder) Close() {}
