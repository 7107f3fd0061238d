package headers

import (
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

// SecurityFilter sets the security headers on every response of a route.
// It is immutable and safe for concurrent use; it allocates nothing per
// request.
type SecurityFilter struct {
	all      []header
	tls      []header // sent on TLS requests only (HSTS)
	override bool
}

// header is one header to set: name in canonical form.
type header struct {
	name, value []byte
	tlsOnly     bool
}

var _ core.AfterFilter = (*SecurityFilter)(nil)

// Filter lets every request through.
func (f *SecurityFilter) Filter(*fasthttp.RequestCtx, *core.Request) bool { return true }

// After sets the headers on the response, whoever made it: the upstream,
// the terminal, or a later filter's 401, 403 or 429.
func (f *SecurityFilter) After(ctx *fasthttp.RequestCtx, _ *core.Request) {
	h := &ctx.Response.Header
	f.set(h, f.all)
	if ctx.IsTLS() {
		f.set(h, f.tls)
	}
}

func (f *SecurityFilter) set(h *fasthttp.ResponseHeader, hs []header) {
	for i := range hs {
		s := &hs[i]
		if !f.override && len(h.PeekBytes(s.name)) > 0 {
			continue // the upstream's own value wins
		}
		h.SetCanonical(s.name, s.value)
	}
}

// Unrouted returns the security headers of cfg for the answers the gateway
// gives before a route matched (core.Options.Unrouted): no route, 405, a
// refused malformed request, OPTIONS *. nil when they are off.
func Unrouted(cfg *config.Config) func(ctx *fasthttp.RequestCtx) {
	if (Security{}).Key(cfg, nil) == nil {
		return nil
	}
	f := newSecurityFilter(&cfg.SecurityHeaders)
	return func(ctx *fasthttp.RequestCtx) { f.After(ctx, nil) }
}
