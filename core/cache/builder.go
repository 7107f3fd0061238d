// Package cache is the gateway's response cache: a route filter answering
// GET and HEAD requests from a store shared by every route (fastcache,
// sized by the top-level cache.max_size), as a shared cache of RFC 9111
// would, with request collapsing, RFC 5861's stale-while-revalidate and
// stale-if-error, conditional requests (304) and purging by key or key
// prefix.
//
// The filter runs after auth and rate limits and before the request
// transforms and the terminal: a hit is answered in Filter; a miss goes
// on, and After stores the response the client gets (after the response
// transforms). The Builder owns the store, its key index, the in-flight
// fetches and refreshes; they survive reloads. A route's Filter holds
// only its settings. builder.go builds; filter.go is the request path;
// store.go the store; entry.go the stored format; key.go the keys;
// control.go parses Cache-Control.
package cache

import (
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"fastgate/core"
	"fastgate/core/config"
)

// Metric names (README "Caching").
const (
	metricRequests  = "fastgate_cache_requests_total"
	metricBytes     = "fastgate_cache_bytes"
	metricEntries   = "fastgate_cache_entries"
	metricKeys      = "fastgate_cache_keys"
	metricWaiting   = "fastgate_cache_collapsed_waiting"
	metricPurged    = "fastgate_cache_purged_total"
	metricEvictions = "fastgate_cache_evictions_total"
	metricRefreshes = "fastgate_cache_refreshes_total"
)

// maxRefreshes bounds the background refreshes (stale-while-revalidate)
// running at once, over all routes; a stale hit past it serves the stale
// copy without starting one (a later stale hit will).
const maxRefreshes = 16

// ErrEmptyKey is Purge's answer to an empty key or prefix.
var ErrEmptyKey = errors.New(`cache: empty purge key; give a key as in X-Cache-Key, such as "GET api.example.com/products/1", or a prefix`)

// Options configure a Builder.
type Options struct {
	// Logger receives failed background refreshes. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock, for tests. Default: the request's time
	// (fasthttp's ctx.Time()) on the request path, time.Now for
	// background refreshes.
	Now func() time.Time
	// OnRefresh, when set, is called after each background refresh with
	// the entry's key and the refresh's error (nil: stored or found not
	// storable). For tests.
	OnRefresh func(key string, err error)
}

// Builder is a core.FilterBuilder for routes' cache. It owns the store
// shared by all routes, so entries survive reloads (the store is made
// anew, empty, only when cache.max_size changes). It is safe for
// concurrent use. Close it after the gateway has shut down.
type Builder struct {
	opts Options
	log  *slog.Logger

	st atomic.Pointer[store]

	mu sync.Mutex // guards Build and Close

	flights flights
	refresh refreshes
	// waiting counts requests waiting for another's fetch of their key.
	waiting atomic.Int64

	purged, evictions, refreshes atomic.Pointer[metrics.Counter]
	evictedSeen                  atomic.Uint64
}

var _ core.FilterBuilder = (*Builder)(nil)

// spec is what a route's Filter is built from: its Key.
type spec struct {
	Cache   config.Cache
	MaxSize config.Size
}

// NewBuilder returns a Builder.
func NewBuilder(o Options) *Builder {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Builder{opts: o, log: log}
	b.flights.m = make(map[uint64]*flight)
	b.refresh.m = make(map[uint64]struct{})
	b.refresh.sem = make(chan struct{}, maxRefreshes)
	return b
}

// Key returns the route's cache settings and the store size, nil when
// the route has no cache.
func (b *Builder) Key(cfg *config.Config, rc *config.Route) any {
	if rc.Cache == nil {
		return nil
	}
	return &spec{Cache: *rc.Cache, MaxSize: cfg.Cache.MaxSize}
}

// Validate checks what config's validation does not: nothing more yet;
// every terminal's buffered response can be cached (proxy, aggregate,
// static, redirect).
func (b *Builder) Validate(e *core.Env) error {
	if e.Config.Cache.MaxSize <= 0 {
		return errors.New("cache: cache.max_size must be > 0")
	}
	return nil
}

// Build returns the route's Filter, making the store on first use or
// when cache.max_size changed.
func (b *Builder) Build(e *core.Env) (core.Filter, error) {
	b.mu.Lock()
	size := e.Config.Cache.MaxSize.Int()
	if s := b.st.Load(); s == nil || s.maxBytes != size {
		b.st.Store(newStore(size))
		b.evictedSeen.Store(0)
		if s != nil {
			s.reset()
		}
	}
	b.mu.Unlock()
	f := newFilter(b, e.Route.Name, e.Route.Cache)
	f.bg = e.Background()
	label := `{route=` + strconv.Quote(e.Route.Name) + `,result="`
	f.hits = e.Counter(metricRequests + label + `hit"}`)
	f.misses = e.Counter(metricRequests + label + `miss"}`)
	f.stales = e.Counter(metricRequests + label + `stale"}`)
	f.bypasses = e.Counter(metricRequests + label + `bypass"}`)
	f.notModified = e.Counter(metricRequests + label + `not_modified"}`)
	b.purged.Store(e.Counter(metricPurged))
	b.evictions.Store(e.Counter(metricEvictions))
	b.refreshes.Store(e.Counter(metricRefreshes))
	e.Gauge(metricBytes, func() float64 { return float64(b.stats().BytesSize) })
	e.Gauge(metricEntries, func() float64 { return float64(b.stats().EntriesCount) })
	e.Gauge(metricKeys, func() float64 { return float64(b.keys()) })
	e.Gauge(metricWaiting, func() float64 { return float64(b.waiting.Load()) })
	return f, nil
}

// Purge removes the entry with key (prefix false) and its variants (per
// Vary value or consumer), or every entry whose key starts with key
// (prefix true), and returns how many it removed. Keys are as in
// X-Cache-Key: "GET api.example.com/products/1?page=2".
func (b *Builder) Purge(key string, prefix bool) (int, error) {
	if key == "" {
		return 0, ErrEmptyKey
	}
	s := b.st.Load()
	if s == nil {
		return 0, nil
	}
	n := s.purge(key, prefix)
	if c := b.purged.Load(); c != nil {
		c.Add(n)
	}
	return n, nil
}

// Waiting returns how many requests wait for another request's fetch of
// their key (request collapsing); tests use it as a sync point.
func (b *Builder) Waiting() int { return int(b.waiting.Load()) }

// Close releases the store. Call it once the gateway is shut down; the
// background refreshes still running finish without storing.
func (b *Builder) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.st.Swap(nil); s != nil {
		s.reset()
	}
}

// stats returns the store's fastcache statistics, and counts the
// evictions the key index has found since the last call.
func (b *Builder) stats() storeStats {
	s := b.st.Load()
	if s == nil {
		return storeStats{}
	}
	st := s.stats()
	b.countEvictions(s)
	return storeStats{BytesSize: st.BytesSize, EntriesCount: st.EntriesCount}
}

type storeStats struct{ BytesSize, EntriesCount uint64 }

func (b *Builder) keys() int {
	if s := b.st.Load(); s != nil {
		b.countEvictions(s)
		return s.keys()
	}
	return 0
}

// countEvictions moves the store's eviction count into the counter.
func (b *Builder) countEvictions(s *store) {
	n := s.evicted.Load()
	if prev := b.evictedSeen.Swap(n); n > prev {
		if c := b.evictions.Load(); c != nil {
			c.Add(int(n - prev))
		}
	}
}

// now returns the time of a background request.
func (b *Builder) now() time.Time {
	if b.opts.Now != nil {
		return b.opts.Now()
	}
	return time.Now()
}
