// Package static is the static terminal: a route that answers with a fixed
// response (status, body, headers) from the config, without an upstream,
// for health endpoints, maintenance pages, robots.txt and the like.
//
//	routes:
//	  - match: {path: /robots.txt}
//	    static: {body: "User-agent: *\nDisallow: /\n", headers: {Cache-Control: "max-age=3600"}}
package static

import (
	"sort"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

// Builder is the core.TerminalBuilder of routes with static. It holds no
// state and is safe for concurrent use.
type Builder struct{}

var _ core.TerminalBuilder = Builder{}

// Key returns the route's static config, nil when it has none.
func (Builder) Key(_ *config.Config, rc *config.Route) any {
	if rc.Static == nil {
		return nil
	}
	return rc.Static
}

// Validate has nothing to add to config's validation.
func (Builder) Validate(*core.Env) error { return nil }

// Build compiles the response once.
func (Builder) Build(e *core.Env) (core.Terminal, error) {
	c := e.Route.Static
	t := &Terminal{status: c.Status, body: []byte(c.Body), contentType: []byte(c.ContentType)}
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t.headers = append(t.headers, header{key: []byte(k), value: []byte(c.Headers[k])})
	}
	return t, nil
}

// Terminal answers every request of its route with one fixed response. It
// is immutable and allocates nothing per request.
type Terminal struct {
	status      int
	body        []byte
	contentType []byte // nil: none
	headers     []header
}

type header struct{ key, value []byte }

var _ core.Terminal = (*Terminal)(nil)

// Serve implements core.Terminal.
func (t *Terminal) Serve(ctx *fasthttp.RequestCtx, r *core.Request) {
	resp := &ctx.Response
	resp.SetStatusCode(t.status)
	if t.contentType != nil {
		resp.Header.SetContentTypeBytes(t.contentType)
	}
	for i := range t.headers {
		resp.Header.SetBytesKV(t.headers[i].key, t.headers[i].value)
	}
	resp.Header.SetBytesV("X-Request-ID", r.RequestID)
	// The body is shared by every request and never modified.
	resp.SetBodyRaw(t.body)
}
