// Package headers is the gateway's response security headers (Security,
// the top-level security_headers) and routes' header transforms
// (Transforms, a route's headers: remove, rename, set, add on the request
// going upstream and the response going back). Both are compiled once per
// route; values with placeholders are compiled into parts and expanded per
// request into a pooled buffer. builder.go builds; security.go and
// transform.go are the request paths.
package headers

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

// Transforms is a core.FilterBuilder for routes' headers. It holds
// nothing; it is safe for concurrent use.
type Transforms struct{}

// Security is a core.FilterBuilder for security_headers. It is first in
// the chain, so its After runs last and marks the answers of every later
// filter (401, 403, 429) and of the terminal. It holds nothing; it is
// safe for concurrent use.
type Security struct{}

var (
	_ core.FilterBuilder = Transforms{}
	_ core.FilterBuilder = Security{}
)

// transformKey is what a route's transforms are built from: the
// placeholders' parameter indexes depend on the route's path.
type transformKey struct {
	Headers config.HeaderTransforms
	Path    string
}

// Key returns the route's headers and path, nil when it has no transform.
func (Transforms) Key(cfg *config.Config, rc *config.Route) any {
	if rc.Headers == nil || rc.Headers.Request.IsZero() && rc.Headers.Response.IsZero() {
		return nil
	}
	return transformKey{Headers: *rc.Headers, Path: rc.Match.Path}
}

// Validate compiles the transforms without keeping them.
func (Transforms) Validate(e *core.Env) error {
	_, err := NewTransform(e.Route.Headers, e.Params())
	return err
}

// Build returns the route's transform Filter.
func (Transforms) Build(e *core.Env) (core.Filter, error) {
	return NewTransform(e.Route.Headers, e.Params())
}

// NewTransform compiles h for a route whose path parameters are params,
// in template order.
func NewTransform(h *config.HeaderTransforms, params []string) (*Transform, error) {
	t := &Transform{}
	var err error
	if t.req, err = compileOps(params, "headers.request", &h.Request); err != nil {
		return nil, err
	}
	if t.resp, err = compileOps(params, "headers.response", &h.Response); err != nil {
		return nil, err
	}
	return t, nil
}

func compileOps(params []string, path string, o *config.HeaderOps) (ops, error) {
	var c ops
	for _, name := range o.Remove {
		if prefix, ok := strings.CutSuffix(name, "*"); ok {
			c.removePrefix = append(c.removePrefix, []byte(strings.ToLower(prefix)))
			continue
		}
		c.remove = append(c.remove, canonical(name))
	}
	for _, old := range slices.Sorted(maps.Keys(o.Rename)) {
		c.rename = append(c.rename, rename{from: string(canonical(old)), to: canonical(o.Rename[old])})
	}
	var err error
	if c.set, err = compileValues(params, path+".set", o.Set); err != nil {
		return c, err
	}
	if c.add, err = compileValues(params, path+".add", o.Add); err != nil {
		return c, err
	}
	c.any = len(c.remove)+len(c.removePrefix)+len(c.rename)+len(c.set)+len(c.add) > 0
	return c, nil
}

func compileValues(params []string, path string, m map[string]string) ([]value, error) {
	var vs []value
	for _, name := range slices.Sorted(maps.Keys(m)) {
		parts, err := config.ParseHeaderTemplate(m[name], params)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", path, name, err)
		}
		v := value{name: canonical(name)}
		for _, p := range parts {
			cp := part{kind: p.Kind, lit: []byte(p.Value), param: -1}
			if p.Kind == config.PartParam {
				cp.lit, cp.param = nil, slices.Index(params, p.Value)
			}
			v.parts = append(v.parts, cp)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// canonical returns name as fasthttp normalizes header names
// ("x-gw-id" -> "X-Gw-Id"), for SetCanonical.
func canonical(name string) []byte {
	return fasthttp.AppendNormalizedHeaderKey(nil, name)
}

// Key returns security_headers, nil when they are off or send nothing.
func (Security) Key(cfg *config.Config, rc *config.Route) any {
	s := cfg.SecurityHeaders
	if s.Off || len(securityHeaders(&s)) == 0 {
		return nil
	}
	return s
}

// Validate has nothing to check beyond the config's validation.
func (Security) Validate(e *core.Env) error { return nil }

// Build returns the Filter that sets the security headers.
func (Security) Build(e *core.Env) (core.Filter, error) {
	return newSecurityFilter(&e.Config.SecurityHeaders), nil
}

func newSecurityFilter(s *config.SecurityHeaders) *SecurityFilter {
	f := &SecurityFilter{override: s.Override}
	for _, h := range securityHeaders(s) {
		if h.tlsOnly {
			f.tls = append(f.tls, h)
		} else {
			f.all = append(f.all, h)
		}
	}
	return f
}

// securityHeaders lists the headers s sends.
func securityHeaders(s *config.SecurityHeaders) []header {
	var hs []header
	add := func(name, v string, tlsOnly bool) {
		if v != "" && v != config.HeaderOff {
			hs = append(hs, header{name: canonical(name), value: []byte(v), tlsOnly: tlsOnly})
		}
	}
	add("Strict-Transport-Security", s.HSTS, true)
	add("X-Content-Type-Options", s.ContentTypeOptions, false)
	add("X-Frame-Options", strings.ToUpper(s.FrameOptions), false)
	add("Referrer-Policy", s.ReferrerPolicy, false)
	add("Content-Security-Policy", s.ContentSecurityPolicy, false)
	for _, name := range slices.Sorted(maps.Keys(s.Set)) {
		add(name, s.Set[name], false)
	}
	return hs
}
