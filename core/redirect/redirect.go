// Package redirect is the redirect terminal: a route that answers with a
// redirect to a URL built from the route's path parameters, without an
// upstream.
//
//	routes:
//	  - match: {path: "/old/users/{id}"}
//	    redirect: {url: "https://api.example.com/v2/users/{id}", status: 308, keep_query: true}
package redirect

import (
	"strings"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

// Builder is the core.TerminalBuilder of routes with redirect. It holds no
// state and is safe for concurrent use.
type Builder struct{}

var _ core.TerminalBuilder = Builder{}

// Key returns the route's redirect config, nil when it has none.
func (Builder) Key(_ *config.Config, rc *config.Route) any {
	if rc.Redirect == nil {
		return nil
	}
	return rc.Redirect
}

// Validate checks the URL template against the route's parameters.
func (Builder) Validate(e *core.Env) error {
	_, err := config.ParseTemplate(e.Route.Redirect.URL, e.Params())
	if err != nil {
		return prefixed{err}
	}
	return nil
}

// Build compiles the URL template.
func (Builder) Build(e *core.Env) (core.Terminal, error) {
	c := e.Route.Redirect
	parts, err := config.ParseTemplate(c.URL, e.Params())
	if err != nil {
		return nil, prefixed{err}
	}
	t := &Terminal{status: c.Status, keepQuery: c.KeepQuery, hasQuery: strings.Contains(c.URL, "?")}
	inQuery := false
	for _, p := range parts {
		if !p.Param {
			t.parts = append(t.parts, part{literal: []byte(p.Value), param: -1})
			inQuery = inQuery || strings.Contains(p.Value, "?")
			continue
		}
		t.parts = append(t.parts, part{param: e.ParamIndex(p.Value), query: inQuery})
	}
	return t, nil
}

type prefixed struct{ err error }

func (p prefixed) Error() string { return "redirect.url: " + p.err.Error() }
func (p prefixed) Unwrap() error { return p.err }

// Terminal answers with a redirect. It is immutable and allocates nothing
// per request for Locations up to maxInline bytes.
type Terminal struct {
	status    int
	parts     []part
	keepQuery bool
	hasQuery  bool // the template has a query already
}

// part is literal text, or the value of path parameter param (escaped for
// a query when query).
type part struct {
	literal []byte
	param   int
	query   bool
}

const maxInline = 512

var _ core.Terminal = (*Terminal)(nil)

// Serve implements core.Terminal.
func (t *Terminal) Serve(ctx *fasthttp.RequestCtx, r *core.Request) {
	var buf [maxInline]byte
	loc := t.appendLocation(buf[:0], r, ctx.URI().QueryString())
	resp := &ctx.Response
	resp.SetStatusCode(t.status)
	resp.Header.SetBytesV(fasthttp.HeaderLocation, loc)
	resp.Header.SetBytesV("X-Request-ID", r.RequestID)
}

// appendLocation appends the redirect URL for r.
func (t *Terminal) appendLocation(dst []byte, r *core.Request, query []byte) []byte {
	for i := range t.parts {
		p := &t.parts[i]
		switch {
		case p.param < 0:
			dst = append(dst, p.literal...)
		case p.query:
			dst = fasthttp.AppendQuotedArg(dst, r.ParamAt(p.param))
		default:
			dst = core.AppendQuotedPath(dst, r.ParamAt(p.param))
		}
	}
	if t.keepQuery && len(query) > 0 {
		if t.hasQuery {
			dst = append(dst, '&')
		} else {
			dst = append(dst, '?')
		}
		dst = append(dst, query...)
	}
	return dst
}
