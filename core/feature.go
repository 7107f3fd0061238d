package core

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"fastgate/core/config"
)

// Features (rate limiting, auth, caching, static responses, aggregation,
// ...) plug into routes through builders given in Options, with a
// lifecycle like Caddy's modules:
//
//	Key      what the route's instance is built from; nil: the route has none
//	Validate check it, without side effects (fastgate -check runs only this)
//	Build    make the instance: limiters, clients, goroutines, metric series
//	Close    (io.Closer on the instance) once no snapshot uses it
//
// An instance survives reloads: when the next config gives the same route
// (by name) of the same builder an equal Key (reflect.DeepEqual of config
// values, never of their fmt renderings), the new snapshot takes the
// instance over instead of building one, so limiter buckets, caches and
// connections carry on. An instance that looked up an upstream
// (Env.Upstream) is bound to its snapshot's upstreams and is built anew
// for every snapshot.

// FilterBuilder builds one kind of route filter. Builders are given in
// chain order in Options.Filters. Methods are called with the gateway's
// apply lock held, one config at a time, but never while a request waits.
type FilterBuilder interface {
	// Key returns what route rc's filter of this kind is built from (a
	// config value, compared with reflect.DeepEqual), or nil when the
	// route has none.
	Key(cfg *config.Config, rc *config.Route) any
	// Validate checks the route's settings without side effects: no
	// connection, goroutine or series. Errors name what to change; core
	// prefixes them with the route's path ("routes[2]: ...").
	Validate(e *Env) error
	// Build makes the filter. It runs after Validate passed, off the
	// request path, and may dial (Redis, etcd). An instance that is an
	// io.Closer is closed once the last snapshot using it has drained.
	Build(e *Env) (Filter, error)
}

// TerminalBuilder builds one kind of route terminal, as FilterBuilder does
// filters. Exactly one builder must claim each route (a non-nil Key);
// core's own proxy claims the routes with an upstream.
type TerminalBuilder interface {
	Key(cfg *config.Config, rc *config.Route) any
	Validate(e *Env) error
	Build(e *Env) (Terminal, error)
}

// Env is what a builder sees of the config and the snapshot being built.
// It is valid only during the Validate or Build call.
type Env struct {
	// Config is the whole config; Route the route being built. Neither may
	// be modified.
	Config *config.Config
	Route  *config.Route
	// Logger is the gateway's logger.
	Logger *slog.Logger

	s    *Snapshot
	r    *route
	is   *instances
	inst *instance // nil in Validate
	m    *Metrics  // nil in Validate
}

// Upstream returns the snapshot's upstream name, or nil. An instance that
// calls it is rebuilt for every snapshot, since upstreams are.
func (e *Env) Upstream(name string) *Upstream {
	if e.inst != nil {
		e.inst.perSnapshot = true
	}
	return e.s.upstreams[name]
}

// Params returns the route's path parameter names, in template order.
func (e *Env) Params() []string { return e.r.params }

// ParamIndex returns the index of the route's path parameter name for
// Request.ParamAt, or -1.
func (e *Env) ParamIndex(name string) int {
	for i, p := range e.r.params {
		if p == name {
			return i
		}
	}
	return -1
}

// AnswersPreflight says that the route's filter answers CORS preflights
// itself: an OPTIONS request with Origin and Access-Control-Request-Method
// then matches the route when the requested method does, even if the
// route's methods exclude OPTIONS.
func (e *Env) AnswersPreflight() { e.r.preflight = true }

// Counter returns the counter name (a full series name with labels),
// shared by every instance that asks for it and unregistered when the last
// one is closed.
func (e *Env) Counter(name string) *metrics.Counter {
	e.track(name)
	return e.m.set.GetOrCreateCounter(name)
}

// Gauge registers the gauge name reading f, once; like Counter it is
// refcounted, and the first instance's f is kept.
func (e *Env) Gauge(name string, f func() float64) {
	e.track(name)
	e.m.set.GetOrCreateGauge(name, f)
}

// Histogram returns the Prometheus histogram name with the gateway's
// latency buckets, refcounted like Counter.
func (e *Env) Histogram(name string) *metrics.PrometheusHistogram {
	e.track(name)
	return e.m.set.GetOrCreatePrometheusHistogramExt(name, durationBuckets)
}

func (e *Env) track(name string) {
	if e.inst == nil {
		panic("core: Env metric series are for Build, not Validate")
	}
	e.m.acquireSeries(name)
	e.inst.series = append(e.inst.series, name)
}

// instance is one built filter or terminal and the snapshots that use it.
type instance struct {
	builder any // the FilterBuilder or TerminalBuilder
	route   string
	key     any
	value   any // Filter or Terminal
	series  []string
	// perSnapshot: bound to one snapshot's upstreams, never taken over.
	perSnapshot bool
	refs        int // snapshots using it; guarded by instances.mu
}

// instances are the feature instances of a gateway's snapshots.
type instances struct {
	mu sync.Mutex
	m  *Metrics
	// current is the gateway's serving snapshot, for Background; nil
	// outside a gateway (Compile).
	current *atomic.Pointer[Snapshot]
	// ws are the gateway's open WebSocket pairs; nil outside a gateway.
	ws *wsRegistry
}

// reuse returns prev's instance of builder b for route with an equal key,
// taking a reference, or nil.
func (is *instances) reuse(prev *Snapshot, b any, route string, key any) *instance {
	if prev == nil {
		return nil
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	for _, in := range prev.instances {
		if in.builder == b && in.route == route && !in.perSnapshot && in.refs > 0 && reflect.DeepEqual(in.key, key) {
			in.refs++
			return in
		}
	}
	return nil
}

// release drops one reference of each of list; an instance no snapshot
// uses any more is closed and its series unregistered.
func (is *instances) release(list []*instance) {
	var closing []*instance
	is.mu.Lock()
	for _, in := range list {
		if in.refs--; in.refs == 0 {
			closing = append(closing, in)
		}
	}
	is.mu.Unlock()
	for _, in := range closing {
		if c, ok := in.value.(io.Closer); ok {
			c.Close() //nolint:errcheck // instances log their own failures
		}
		is.m.releaseSeries(in.series)
	}
}

// buildFeatures gives route r of s its filters and terminal, taking
// instances of prev over where their key is unchanged. check only
// validates.
func (s *Snapshot) buildFeatures(r *route, rc *config.Route, opts *Options, prev *Snapshot, is *instances, check bool) error {
	env := Env{Config: s.cfg, Route: rc, Logger: opts.Logger, s: s, r: r, is: is}
	for _, b := range opts.Filters {
		v, err := s.buildOne(&env, b, prev, is, check, func(e *Env) (any, error) { return b.Build(e) }, b.Key, b.Validate)
		if err != nil {
			return err
		}
		if f, ok := v.(Filter); ok {
			r.addFilter(f)
		}
	}
	terminals := append(opts.Terminals[:len(opts.Terminals):len(opts.Terminals)], proxyBuilder{})
	for _, b := range terminals {
		v, err := s.buildOne(&env, b, prev, is, check, func(e *Env) (any, error) { return b.Build(e) }, b.Key, b.Validate)
		if err != nil {
			return err
		}
		t, ok := v.(Terminal)
		if !ok {
			continue
		}
		if r.terminal != nil {
			return fmt.Errorf("two terminals claim the route (%T and %T); a route has one", r.terminal, t)
		}
		r.terminal = t
	}
	if r.terminal == nil && !check {
		return errors.New("no terminal: set upstream, static or redirect")
	}
	return nil
}

// buildOne validates and builds (or takes over) builder b's instance for
// env's route; nil when the route has none.
func (s *Snapshot) buildOne(env *Env, b any, prev *Snapshot, is *instances, check bool,
	build func(*Env) (any, error), keyOf func(*config.Config, *config.Route) any, validate func(*Env) error,
) (any, error) {
	key := keyOf(env.Config, env.Route)
	if key == nil {
		return nil, nil
	}
	env.inst, env.m = nil, nil
	if err := validate(env); err != nil {
		return nil, err
	}
	if check {
		return nil, nil
	}
	if in := is.reuse(prev, b, env.Route.Name, key); in != nil {
		s.instances = append(s.instances, in)
		return in.value, nil
	}
	in := &instance{builder: b, route: env.Route.Name, key: key, refs: 1}
	env.inst, env.m = in, is.m
	v, err := build(env)
	env.inst, env.m = nil, nil
	if err != nil {
		is.m.releaseSeries(in.series)
		return nil, err
	}
	if isNil(v) {
		is.m.releaseSeries(in.series)
		return nil, fmt.Errorf("core: %T built nothing for a route it claimed", b)
	}
	in.value = v
	s.instances = append(s.instances, in)
	return v, nil
}

// addFilter appends f to r's chain with its optional phases, asserted
// once here, never per request.
func (r *route) addFilter(f Filter) {
	r.filters = append(r.filters, f)
	a, _ := f.(AfterFilter)
	d, _ := f.(DoneFilter)
	r.after = append(r.after, a)
	r.done = append(r.done, d)
	r.hasAfter = r.hasAfter || a != nil
	r.hasDone = r.hasDone || d != nil
}

// isNil reports whether v is nil or a nil pointer (a builder that returned
// a typed nil).
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Interface, reflect.Chan:
		return rv.IsNil()
	}
	return false
}
