package cors

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkPreflight answers a preflight of a wildcard origin with listed
// headers, the filter alone on a RequestCtx.
func BenchmarkPreflight(b *testing.B) {
	f := benchFilter(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Request.Header.SetMethod("OPTIONS")
			ctx.Request.Header.Set("Origin", "https://a.b.example.org")
			ctx.Request.Header.Set("Access-Control-Request-Method", "PUT")
			ctx.Request.Header.Set("Access-Control-Request-Headers", "content-type, x-trace")
			f.Filter(&ctx, nil)
			ctx.Response.Reset()
		}
	})
}

// BenchmarkActual runs After for an allowed origin with an upstream Vary.
func BenchmarkActual(b *testing.B) {
	f := benchFilter(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Origin", "https://app.example.com")
		for pb.Next() {
			ctx.Response.Header.Set("Vary", "Accept-Encoding")
			f.After(&ctx, nil)
			ctx.Response.Reset()
		}
	})
}

func benchFilter(b *testing.B) *Filter {
	c := mustCompile(b, []string{"https://app.example.com", "https://*.example.org", "http://localhost:3000"})
	c.credentials = true
	c.anyMethod, c.methods, c.methodsValue = tokenList([]string{"GET", "PUT"}, false)
	c.reflectHeaders = false
	c.anyHeader, c.headers, c.headersValue = tokenList([]string{"Content-Type", "X-Trace"}, true)
	c.exposeValue = []byte("X-Total")
	return c
}
