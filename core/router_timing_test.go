package core

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkRouteMatch measures route matching alone.
func BenchmarkRouteMatch(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			cfg := "upstreams:\n  u: {targets: [{url: \"http://10.0.0.1:80\"}]}\nroutes:\n"
			for i := 0; i < n; i++ {
				cfg += fmt.Sprintf("  - {match: {path: \"/svc%d/items/{id}/parts/{part}\", methods: [GET]}, upstream: u}\n", i)
			}
			snap, err := Compile(mustConfig(b, cfg), &Options{})
			if err != nil {
				b.Fatal(err)
			}
			path := []byte(fmt.Sprintf("/svc%d/items/123/parts/abc", n-1))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				ctx.Request.Header.SetMethod("GET")
				x := &exchange{ctx: &ctx, method: methodGet}
				hits := 0
				for pb.Next() {
					if snap.router.match(x, nil, path) != nil {
						hits++
					}
				}
				benchSink.Add(int64(hits))
			})
		})
	}
}
