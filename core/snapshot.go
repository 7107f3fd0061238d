package core

import (
	"cmp"
	"fmt"
	"github.com/valyala/fasthttp"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"

	"fastgate/core/accesslog"
	"fastgate/core/config"
)

// Snapshot is a config compiled for the request path: the route table, the
// upstreams with their pools and balancers, the trusted proxies, the
// certificates, and the metric series and access log the requests report
// to. It is immutable once built and read by every request through one
// atomic load, so it is safe for concurrent use.
type Snapshot struct {
	// inflight counts the requests being served on this snapshot, so a
	// replaced snapshot is retired only once it has drained.
	inflight atomic.Int64
	_        [cacheLinePad]byte

	cfg       *config.Config
	router    *router
	routes    []*route
	byName    map[string]*route
	upstreams map[string]*Upstream
	// sources names who set each upstream's targets when not the config
	// (Gateway.SetTargets).
	sources map[string]string
	trusted []netip.Prefix
	edge    edge
	// unrouted decorates the answers given before a route matched; nil:
	// none (Options.Unrouted).
	unrouted func(ctx *fasthttp.RequestCtx)
	certs    *certSet

	unmatched *routeMetrics
	accessLog *accesslog.Logger // nil: off
	sample    float64

	log *slog.Logger
	// watch is the gateway's client watchdog; nil for a snapshot no
	// gateway serves.
	watch *watchdog
	// instances are the feature instances the routes use, released when
	// the snapshot retires; feats tracks them across snapshots.
	instances []*instance
	feats     *instances
}

// decorateUnrouted adds what Options.Unrouted asked for to an answer the
// gateway gave before a route matched.
func (s *Snapshot) decorateUnrouted(ctx *fasthttp.RequestCtx) {
	if s.unrouted != nil {
		s.unrouted(ctx)
	}
}

// cacheLinePad keeps a snapshot's in-flight counter off the cache line of
// the read-only fields every request loads.
const cacheLinePad = 64 - 8

// Compile builds a Snapshot from a config that has had SetDefaults and passed
// Validate. It fails only on what Validate cannot see: unreadable
// certificates, for one. The snapshot is not attached to a gateway; -check
// uses it to validate, then Closes it.
func Compile(cfg *config.Config, opts *Options) (*Snapshot, error) {
	m := newMetrics(func() float64 { return 0 })
	return compile(cfg, opts, nil, &instances{m: m}, m, true)
}

// compile builds a Snapshot. Targets of prev with the same upstream,
// address and pool settings are taken over with their connections and
// balancing state, and feature instances with unchanged keys; metric series
// are shared by name. check only validates the routes' features: nothing
// is built, dialed or started. On error, what was taken is released.
func compile(cfg *config.Config, opts *Options, prev *Snapshot, is *instances, m *Metrics, check bool) (_ *Snapshot, err error) {
	s := &Snapshot{
		log:       cmp.Or(opts.Logger, slog.Default()),
		feats:     is,
		cfg:       cfg,
		router:    newRouter(),
		byName:    make(map[string]*route, len(cfg.Routes)),
		upstreams: make(map[string]*Upstream, len(cfg.Upstreams)),
		unmatched: m.route(unmatchedRoute),
		sample:    cfg.AccessLog.Sample,
	}
	defer func() {
		if err != nil {
			is.release(s.instances)
		}
	}()
	s.edge = compileEdge(cfg)
	if opts.Unrouted != nil {
		s.unrouted = opts.Unrouted(cfg)
	}
	if s.trusted, err = parsePrefixes(cfg.Server.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	if s.certs, err = loadCerts(&cfg.TLS); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var old *Upstream
		if prev != nil {
			old = prev.upstreams[name]
		}
		up, err := compileUpstream(name, cfg.Upstreams[name], opts.Dial, old, m)
		if err != nil {
			return nil, fmt.Errorf("upstreams.%s: %w", name, err)
		}
		s.upstreams[name] = up
	}
	for i, rc := range cfg.Routes {
		r, segs, err := s.compileRoute(i, rc)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		r.metrics = m.route(r.name)
		if err := s.buildFeatures(r, rc, opts, prev, is, check); err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		s.routes = append(s.routes, r)
		s.byName[r.name] = r
		s.router.add(r, rc.Match.Hosts, segs)
	}
	s.router.finish()
	return s, nil
}

func (s *Snapshot) compileRoute(i int, rc *config.Route) (*route, []config.Segment, error) {
	segs, err := config.ParsePathTemplate(rc.Match.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("match.path: %w", err)
	}
	r := &route{name: rc.Name, index: i, params: config.ParamNames(segs)}
	if r.methods, err = newMethodSet(rc.Match.Methods); err != nil {
		return nil, nil, fmt.Errorf("match.methods: %w", err)
	}
	r.headers = conditions(rc.Match.Headers, true)
	r.query = conditions(rc.Match.Query, false)
	return r, segs, nil
}

// conditions compiles a header or query map, sorted for a stable order.
func conditions(m map[string]string, header bool) []condition {
	out := make([]condition, 0, len(m))
	for k, v := range m {
		if header {
			k = canonicalHeader(k)
		}
		out = append(out, condition{name: k, value: []byte(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// canonicalHeader returns fasthttp's normalized form of a header name
// ("x-env" -> "X-Env").
func canonicalHeader(k string) string {
	b := []byte(strings.ToLower(k))
	upper := true
	for i, c := range b {
		if upper && c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		upper = c == '-'
	}
	return string(b)
}

func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Config returns the config the snapshot was compiled from. It must not be
// modified.
func (s *Snapshot) Config() *config.Config { return s.cfg }

// hasRoute reports whether the snapshot has a route named name (or name is
// the label of unmatched requests, which every snapshot has).
func (s *Snapshot) hasRoute(name string) bool {
	return s.byName[name] != nil || name == unmatchedRoute
}

// InFlight returns the number of requests being served on the snapshot.
func (s *Snapshot) InFlight() int64 { return s.inflight.Load() }

// Close releases the snapshot's idle upstream connections. It is for a
// snapshot no gateway serves; a gateway retires its replaced snapshots
// itself.
func (s *Snapshot) Close() {
	s.closeTargets(nil)
	s.feats.release(s.instances)
	s.instances = nil
}

// closeTargets closes the idle connections of the targets that next does
// not use (all of them when next is nil).
func (s *Snapshot) closeTargets(next *Snapshot) {
	for name, up := range s.upstreams {
		var keep *Upstream
		if next != nil {
			keep = next.upstreams[name]
		}
		for _, t := range up.targets {
			if keep == nil || !keep.uses(t) {
				t.hc.CloseIdleConnections()
			}
		}
	}
}
