//go:build !race

package cache

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/coretest"
)

// TestHitAllocs drives whole requests through a real gateway (client,
// server, route match, this filter answering from the store) and asserts
// a hit, a 304 from the cache, a HEAD hit and a sorted-query hit with a
// vary spec allocate nothing.
func TestHitAllocs(t *testing.T) {
	h := newHarness(t, `
routes:
  - {name: sort, match: {path: "/sort"}, upstream: app, cache: {query: sort, vary: [X-Tenant], key_header: true}}
  - {name: api, upstream: app, cache: {}}
`, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=3600")
		ctx.Response.Header.Set("ETag", `"v1"`)
		ctx.Response.Header.Set("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT")
		ctx.Response.Header.Set("Vary", "Accept-Language")
		ctx.SetContentType("application/json")
		ctx.WriteString(`{"id":42,"name":"cached"}`) //nolint:errcheck
	})
	f := func(name, method, uri string, headers []string, status int) {
		t.Helper()
		var hv []string
		for i := 0; i+1 < len(headers); i += 2 {
			hv = append(hv, headers[i]+": "+headers[i+1])
		}
		h.get(uri, hv...) // store it
		coretest.NoAllocsPerRequest(t, name, h.g.PeerClient("192.0.2.1"), func(req *fasthttp.Request) {
			req.Header.SetMethod(method)
			req.SetRequestURI("http://gw.local" + uri)
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
		}, func(resp *fasthttp.Response) {
			if resp.StatusCode() != status || string(resp.Header.Peek("X-Cache")) != "HIT" {
				t.Fatalf("%s: status %d X-Cache %q; want %d HIT", name, resp.StatusCode(), resp.Header.Peek("X-Cache"), status)
			}
		})
	}
	f("hit", "GET", "/a?x=1", nil, 200)
	f("head hit", "HEAD", "/a?x=1", nil, 200)
	f("304 If-None-Match", "GET", "/a?x=1", []string{"If-None-Match", `W/"v1"`}, 304)
	f("304 If-Modified-Since", "GET", "/a?x=1", []string{"If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT"}, 304)
	f("sorted query, vary", "GET", "/sort?b=2&a=1", []string{"X-Tenant", "acme", "Accept-Language", "en"}, 200)
}
