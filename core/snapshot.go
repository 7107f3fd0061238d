package core

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"fastgate/core/config"
)

// Snapshot is a config compiled for the request path: the route table, the
// upstreams with their pools and balancers, and the trusted proxies. It is
// immutable once built and read by every request through one atomic load,
// so it is safe for concurrent use.
type Snapshot struct {
	cfg       *config.Config
	router    *router
	routes    []*route
	upstreams map[string]*upstream
	trusted   []netip.Prefix
}

// Compile builds a Snapshot from a config that has had SetDefaults and passed
// Validate. It fails only on what Validate cannot see.
func Compile(cfg *config.Config, opts *Options) (*Snapshot, error) {
	s := &Snapshot{
		cfg:       cfg,
		router:    newRouter(),
		upstreams: make(map[string]*upstream, len(cfg.Upstreams)),
	}
	var err error
	if s.trusted, err = parsePrefixes(cfg.Server.TrustedProxies); err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	names := make([]string, 0, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		up, err := compileUpstream(name, cfg.Upstreams[name], opts.Dial)
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
		s.routes = append(s.routes, r)
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
	if r.upstream = s.upstreams[rc.Upstream]; r.upstream == nil {
		return nil, nil, fmt.Errorf("upstream: unknown upstream %q", rc.Upstream)
	}
	if r.rewrite, err = compileRewrite(&rc.Rewrite, r.params); err != nil {
		return nil, nil, fmt.Errorf("rewrite.path: %w", err)
	}
	r.timeout = r.upstream.request
	if d := time.Duration(rc.Timeout); d > 0 {
		r.timeout = d
	}
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

// Close releases the snapshot's idle upstream connections.
func (s *Snapshot) Close() {
	for _, up := range s.upstreams {
		for _, t := range up.targets {
			t.hc.CloseIdleConnections()
		}
	}
}
