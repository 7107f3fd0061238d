package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Terminal names: what ends a route's chain. A route has exactly one.
const (
	TerminalProxy     = "proxy"     // upstream: NAME
	TerminalStatic    = "static"    // static: {...}
	TerminalRedirect  = "redirect"  // redirect: {...}
	TerminalAggregate = "aggregate" // aggregate: {...}
	TerminalGRPC      = "grpc"      // grpc: {...}
	TerminalSOAP      = "soap"      // soap: {...}
)

// StaticResponse is a fixed response.
type StaticResponse struct {
	// Status is the response status, 100-599. Default 200.
	Status int `json:"status" yaml:"status"`

	// Body is the response body, sent as it is. Default empty.
	Body string `json:"body" yaml:"body"`

	// ContentType is the Content-Type of the body. Default
	// "text/plain; charset=utf-8" when Body is set, none otherwise.
	ContentType string `json:"content_type" yaml:"content_type"`

	// Headers are set on the response, name to value. Default none.
	Headers map[string]string `json:"headers" yaml:"headers"`
}

// Redirect answers with a redirect.
type Redirect struct {
	// URL is the Location: an absolute URL ("https://new.example.com/u/{id}")
	// or a path ("/v2/users/{id}"), where {name} is the value of the route's
	// path parameter name, percent-encoded. Required.
	URL string `json:"url" yaml:"url"`

	// Status is 301, 302, 303, 307 or 308. Default 302. 307 and 308 keep
	// the method and body; 301 and 302 may turn a POST into a GET in
	// browsers.
	Status int `json:"status" yaml:"status"`

	// KeepQuery appends the client's query string to the URL (after "&"
	// when the URL has a query already). Default false: dropped.
	KeepQuery bool `json:"keep_query" yaml:"keep_query"`
}

// Redirect status default.
const DefaultRedirectStatus = 302

// Terminals returns the terminals set on r, in a fixed order: one for a
// valid route.
func (r *Route) Terminals() []string {
	var out []string
	if r.Upstream != "" {
		out = append(out, TerminalProxy)
	}
	if r.Static != nil {
		out = append(out, TerminalStatic)
	}
	if r.Redirect != nil {
		out = append(out, TerminalRedirect)
	}
	if r.Aggregate != nil {
		out = append(out, TerminalAggregate)
	}
	if r.GRPC != nil {
		out = append(out, TerminalGRPC)
	}
	if r.SOAP != nil {
		out = append(out, TerminalSOAP)
	}
	return out
}

// Terminal returns the route's terminal, "" when it has none or several.
func (r *Route) Terminal() string {
	if t := r.Terminals(); len(t) == 1 {
		return t[0]
	}
	return ""
}

func (s *StaticResponse) setDefaults() {
	setZero(&s.Status, 200)
	if s.Body != "" {
		setZero(&s.ContentType, "text/plain; charset=utf-8")
	}
}

func (r *Redirect) setDefaults() {
	setZero(&r.Status, DefaultRedirectStatus)
}

func (r *Route) setTerminalDefaults() {
	if r.Static != nil {
		r.Static.setDefaults()
	}
	if r.Redirect != nil {
		r.Redirect.setDefaults()
	}
	if r.Aggregate != nil {
		r.Aggregate.setDefaults()
	}
	if r.GRPC != nil {
		r.GRPC.setDefaults()
	}
	if r.SOAP != nil {
		r.SOAP.setDefaults()
	}
}

// validateTerminal checks that r has exactly one terminal and what that
// terminal needs; upstreams are the known upstream names and params the
// route's path parameters (nil when the template did not parse).
func validateTerminal(errs *Errors, path string, r *Route, upstreams, params []string, paramsOK bool) {
	switch ts := r.Terminals(); len(ts) {
	case 0:
		known := "none defined yet"
		if len(upstreams) > 0 {
			known = strings.Join(upstreams, ", ")
		}
		errs.add(path, fmt.Sprintf("has no terminal: set upstream (proxy to one of: %s), static (a fixed response), redirect, aggregate, grpc or soap", known))
		return
	case 1:
	default:
		errs.add(path, fmt.Sprintf("%s exclude each other: a route has one terminal; split it into routes", strings.Join(ts, " and ")))
		return
	}
	switch r.Terminal() {
	case TerminalProxy:
		validateRouteUpstream(errs, path+".upstream", r.Upstream, upstreams)
	case TerminalStatic:
		validateStatic(errs, path+".static", r.Static)
		validateProxyOnly(errs, path, r)
	case TerminalRedirect:
		validateRedirect(errs, path+".redirect", r.Redirect, params, paramsOK)
		validateProxyOnly(errs, path, r)
	case TerminalAggregate:
		validateAggregate(errs, path+".aggregate", r.Aggregate, upstreams, params, paramsOK)
		validateProxyOnly(errs, path, r)
	case TerminalGRPC:
		validateGRPC(errs, path+".grpc", r.GRPC, upstreams, params, paramsOK)
		validateProxyOnly(errs, path, r)
	case TerminalSOAP:
		validateSOAP(errs, path+".soap", r.SOAP, upstreams, params, paramsOK)
		validateProxyOnly(errs, path, r)
	}
}

// validateProxyOnly rejects the proxy's settings on a route without it.
func validateProxyOnly(errs *Errors, path string, r *Route) {
	if r.Rewrite.Path != "" || r.Rewrite.StripPrefix != "" || (r.Rewrite.Host != "" && r.Rewrite.Host != RewriteHostTarget) {
		errs.add(path+".rewrite", fmt.Sprintf("only applies to a route with an upstream; this route is %s", r.Terminal()))
	}
	if r.Timeout != 0 {
		errs.add(path+".timeout", fmt.Sprintf("only applies to a route with an upstream; this route is %s", r.Terminal()))
	}
}

func validateStatic(errs *Errors, path string, s *StaticResponse) {
	if s.Status < 100 || s.Status > 599 {
		errs.add(path+".status", fmt.Sprintf("must be 100-599, got %d", s.Status))
	}
	if strings.ContainsAny(s.ContentType, "\r\n") {
		errs.add(path+".content_type", "must not contain CR or LF")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
		p := pathField(path+".headers", k)
		if !validToken(k) {
			errs.add(p, fmt.Sprintf("%q is not a header name: use letters, digits and !#$%%&'*+-.^_`|~", k))
		}
		if strings.ContainsAny(s.Headers[k], "\r\n\x00") {
			errs.add(p, "the value must not contain CR, LF or NUL")
		}
	}
}

func validateRedirect(errs *Errors, path string, r *Redirect, params []string, paramsOK bool) {
	switch r.Status {
	case 301, 302, 303, 307, 308:
	default:
		errs.add(path+".status", fmt.Sprintf("must be 301, 302, 303, 307 or 308, got %d", r.Status))
	}
	u := r.URL
	switch {
	case u == "":
		errs.add(path+".url", `required: the Location, such as "https://new.example.com/users/{id}" or "/v2/users/{id}"`)
		return
	case strings.ContainsAny(u, " \t\r\n\x00"):
		errs.add(path+".url", fmt.Sprintf("%q must not contain spaces or control characters; percent-encode them", u))
		return
	case !strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://"):
		errs.add(path+".url", fmt.Sprintf(`%q must be an absolute http(s) URL or start with "/"`, u))
		return
	case strings.HasPrefix(u, "//"):
		errs.add(path+".url", fmt.Sprintf(`%q is a scheme-relative URL; write the scheme ("https:%s")`, u, u))
		return
	}
	if paramsOK {
		if _, err := ParseTemplate(u, params); err != nil {
			errs.add(path+".url", err.Error())
		}
	}
}

// ParseTemplate splits s into literal text and {param} references, each of
// which must be one of params.
func ParseTemplate(s string, params []string) ([]RewritePart, error) {
	return parseRewriteParts(s, params)
}
