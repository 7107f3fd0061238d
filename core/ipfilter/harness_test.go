package ipfilter

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
)

// harness runs a real core.Gateway (coretest) with this package's Builder
// and an in-memory upstream at 10.0.0.1:80 answering 200 "ok".
type harness struct {
	g *coretest.Gateway
}

const upstreamBase = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
`

func newHarness(t testing.TB, cfg string) *harness {
	t.Helper()
	up := func(ctx *fasthttp.RequestCtx) { ctx.WriteString("ok") } //nolint:errcheck
	g := coretest.Start(t, upstreamBase+cfg, core.Options{Filters: []core.FilterBuilder{Builder{}}},
		map[string]fasthttp.RequestHandler{"10.0.0.1:80": up})
	return &harness{g: g}
}
