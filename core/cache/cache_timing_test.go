package cache

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHit measures whole requests answered from the cache through an
// in-memory gateway, against the same requests proxied uncached as the
// baseline.
func BenchmarkHit(b *testing.B) {
	for _, size := range []int{100, 16 << 10} {
		body := make([]byte, size)
		h := newHarness(b, `
routes:
  - {name: cached, match: {path: "/cached"}, upstream: app, cache: {}}
  - {name: plain, match: {path: "/plain"}, upstream: app}
`, func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("Cache-Control", "max-age=3600")
			ctx.Write(body) //nolint:errcheck
		})
		for _, path := range []string{"/cached", "/plain"} {
			b.Run(path[1:]+"/"+strconv.Itoa(size), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
					defer fasthttp.ReleaseRequest(req)
					defer fasthttp.ReleaseResponse(resp)
					req.SetRequestURI("http://gw.local" + path)
					n := 0
					for pb.Next() {
						if err := h.g.Client.Do(req, resp); err != nil {
							b.Fatal(err)
						}
						n += len(resp.Body())
					}
					sink.Add(int64(n))
				})
			})
		}
	}
}

var sink atomic.Int64
