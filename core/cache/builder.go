package cache

import (
	"log/slog"

	"fastgate/core"
	"fastgate/core/config"
)

// Options configure a Builder.
type Options struct {
	Logger *slog.Logger
}

// Builder is a core.FilterBuilder for routes' cache. (Being built.)
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

// Purge removes the entry with key (prefix false) or every entry whose key
// starts with key (prefix true) and returns how many it removed.
func (b *Builder) Purge(key string, prefix bool) (int, error) { return 0, nil }

// Close releases the store and stops background refreshes.
func (b *Builder) Close() {}
