package headers

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
	"fastgate/core/ipfilter"
)

// harness runs a real core.Gateway (coretest) with the chain Security,
// ipfilter (for a later filter's 403), Transforms, and an in-memory
// upstream at 10.0.0.1:80. The upstream answers with the request headers
// it got in its body, one "Name: value" line each, and sets the response
// headers the request lists in X-Up-Set ("Name=value;Name=value").
type harness struct {
	g *coretest.Gateway
}

const upstreamBase = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
`

func newHarness(t testing.TB, cfg string) *harness {
	t.Helper()
	g := coretest.Start(t, upstreamBase+cfg, core.Options{
		Filters:  []core.FilterBuilder{Security{}, ipfilter.Builder{}, Transforms{}},
		Unrouted: Unrouted,
	}, map[string]fasthttp.RequestHandler{"10.0.0.1:80": upstream})
	return &harness{g: g}
}

func upstream(ctx *fasthttp.RequestCtx) {
	for k, v := range ctx.Request.Header.All() {
		ctx.Write(k)          //nolint:errcheck
		ctx.WriteString(": ") //nolint:errcheck
		ctx.Write(v)          //nolint:errcheck
		ctx.WriteString("\n") //nolint:errcheck
	}
	set := ctx.Request.Header.Peek("X-Up-Set")
	for len(set) > 0 {
		var kv []byte
		kv, set, _ = bytes.Cut(set, []byte(";"))
		if k, v, ok := bytes.Cut(kv, []byte("=")); ok {
			ctx.Response.Header.AddBytesKV(k, v)
		}
	}
}
