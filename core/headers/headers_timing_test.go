package headers

import (
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
)

// BenchmarkTransform runs a route's request (Filter) and response (After)
// transforms, prefix removal and placeholders included, on a RequestCtx;
// the baseline sets the same headers with literal values and no removal.
func BenchmarkTransform(b *testing.B) {
	c := coretest.Config(b, upstreamBase+`
routes:
  - match: {path: "/users"}
    upstream: users
    headers:
      request:
        remove: [X-Debug, "X-Internal-*"]
        set: {X-Route: "{route}", X-Client: "{client_ip}"}
        add: {X-Tag: "gw"}
      response:
        remove: ["X-Gw-*"]
        rename: {X-Up-Total: X-Total}
        set: {X-Served-By: "gw {route}"}
`)
	tr, err := NewTransform(c.Routes[0].Headers, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("transform", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var ctx fasthttp.RequestCtx
			r := &core.Request{Route: "users", ClientIP: netipAddr}
			for pb.Next() {
				ctx.Request.Header.Set("X-Debug", "1")
				ctx.Request.Header.Set("X-Internal-A", "a")
				ctx.Response.Header.Set("X-Gw-Secret", "s")
				ctx.Response.Header.Set("X-Up-Total", "7")
				tr.Filter(&ctx, r)
				tr.After(&ctx, r)
				ctx.Request.Header.Reset()
				ctx.Response.Header.Reset()
			}
		})
	})
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var ctx fasthttp.RequestCtx
			for pb.Next() {
				ctx.Request.Header.Set("X-Debug", "1")
				ctx.Request.Header.Set("X-Internal-A", "a")
				ctx.Response.Header.Set("X-Gw-Secret", "s")
				ctx.Response.Header.Set("X-Up-Total", "7")
				ctx.Request.Header.Set("X-Route", "users")
				ctx.Request.Header.Set("X-Client", "192.0.2.1")
				ctx.Request.Header.Add("X-Tag", "gw")
				ctx.Response.Header.Set("X-Served-By", "gw users")
				ctx.Request.Header.Reset()
				ctx.Response.Header.Reset()
			}
		})
	})
}

var netipAddr = netip.MustParseAddr("192.0.2.1")

// BenchmarkSecurity sets the default security headers plus three more.
func BenchmarkSecurity(b *testing.B) {
	c := coretest.Config(b, upstreamBase+`
security_headers: {frame_options: DENY, referrer_policy: no-referrer, content_security_policy: "default-src 'self'"}
routes: [{upstream: users}]
`)
	fl, err := Security{}.Build(&core.Env{Config: c, Route: c.Routes[0]})
	if err != nil {
		b.Fatal(err)
	}
	f := fl.(*SecurityFilter)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			f.After(&ctx, nil)
			ctx.Response.Header.Reset()
		}
	})
}
