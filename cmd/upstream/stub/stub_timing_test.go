package stub

import (
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

func BenchmarkHandler(b *testing.B) {
	f := func(name string, h fasthttp.RequestHandler, raw string) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var sink atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				ctx := newCtx(b, raw)
				n := 0
				for pb.Next() {
					h(ctx)
					n += ctx.Response.StatusCode()
				}
				sink.Add(int64(n))
			})
		})
	}
	plain := New(Options{})
	plain.addr = "127.0.0.1:9001"
	users := New(Options{Demo: DemoUsers})
	users.addr = "127.0.0.1:9002"
	echo := New(Options{Echo: true})
	echo.addr = "127.0.0.1:9003"
	get := "GET /api/v1/items?page=2 HTTP/1.1\r\nHost: stub\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"

	// baseline: the least a fasthttp handler can do
	f("baseline", func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }, get)
	f("plain", plain.Handler, get)
	f("size-64KiB", plain.Handler, "GET /?stub_size=65536 HTTP/1.1\r\nHost: stub\r\n\r\n")
	f("header-knobs", plain.Handler, "GET / HTTP/1.1\r\nHost: stub\r\nX-Stub-Status: 201\r\nX-Stub-Size: 100\r\n\r\n")
	f("demo-item", users.Handler, "GET /users/3 HTTP/1.1\r\nHost: stub\r\n\r\n")
	f("echo", echo.Handler, get)
}
