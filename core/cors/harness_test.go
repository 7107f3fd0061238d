package cors

import (
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
)

// harness runs a real core.Gateway (coretest) with this package's Builder
// and an in-memory upstream at 10.0.0.1:80 that counts its requests and
// answers 200 "ok", with the Vary the request's X-Up-Vary asks for.
type harness struct {
	t    testing.TB
	g    *coretest.Gateway
	hits atomic.Int64
}

const upstreamBase = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
`

func newHarness(t testing.TB, cfg string) *harness {
	t.Helper()
	h := &harness{t: t}
	up := func(ctx *fasthttp.RequestCtx) {
		h.hits.Add(1)
		for _, v := range ctx.Request.Header.PeekAll("X-Up-Vary") {
			ctx.Response.Header.AddBytesV("Vary", v)
		}
		ctx.WriteString("ok") //nolint:errcheck
	}
	h.g = coretest.Start(t, upstreamBase+cfg, core.Options{Filters: []core.FilterBuilder{Builder{}}},
		map[string]fasthttp.RequestHandler{"10.0.0.1:80": up})
	return h
}

// do sends method uri with "Name: value" headers; the caller releases the
// response.
func (h *harness) do(method, uri string, headers ...string) *fasthttp.Response {
	h.t.Helper()
	return h.g.Do(method, "http://gw.local"+uri, headers...)
}
