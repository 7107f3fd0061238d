package aggregate_test

import (
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/aggregate"
	"fastgate/core/coretest"
)

// BenchmarkAggregate fans a request out to 3 in-memory backends and
// merges them: as they are (groups placed whole), and decoded with
// allow/deny (which builds maps); proxy is the same gateway proxying to
// one backend, the baseline.
func BenchmarkAggregate(b *testing.B) {
	const cfg = `
upstreams:
  a: {targets: [{url: "http://10.0.0.1:80"}]}
  b: {targets: [{url: "http://10.0.0.2:80"}]}
  c: {targets: [{url: "http://10.0.0.3:80"}]}
routes:
  - name: whole
    match: {path: "/whole/{id}"}
    aggregate:
      backends:
        - {upstream: a, path: "/users/{id}", group: user}
        - {upstream: b, path: "/orders?user={id}", group: orders, collection: true}
        - {upstream: c, path: "/prefs/{id}", group: prefs}
  - name: transformed
    match: {path: "/transformed/{id}"}
    aggregate:
      backends:
        - {upstream: a, path: "/users/{id}", group: user, deny: [password_hash]}
        - {upstream: b, path: "/orders?user={id}", group: orders, collection: true, allow: [id, total]}
        - {upstream: c, path: "/prefs/{id}"}
  - name: proxy
    match: {path: "/proxy/{rest:*}"}
    upstream: a
`
	user := []byte(`{"id":1,"name":"Ada Lovelace","email":"ada@example.com","password_hash":"x","address":{"city":"London","zip":"N1"}}`)
	orders := []byte(`[{"id":10,"total":4999,"sku":"sku-1001"},{"id":11,"total":5998,"sku":"sku-1003"},{"id":12,"total":4995,"sku":"sku-1005"}]`)
	prefs := []byte(`{"theme":"dark","language":"en","notifications":true}`)
	handler := func(body []byte) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(body)
		}
	}
	gw := coretest.Start(b, cfg, core.Options{Terminals: []core.TerminalBuilder{aggregate.Builder{}}}, map[string]fasthttp.RequestHandler{
		"10.0.0.1:80": handler(user), "10.0.0.2:80": handler(orders), "10.0.0.3:80": handler(prefs),
	})
	for _, path := range []string{"/whole/1", "/transformed/1", "/proxy/users/1"} {
		b.Run(path[1:len(path)-2], func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				n := 0
				for pb.Next() {
					req.SetRequestURI("http://gw" + path)
					if err := gw.Client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
						b.Fatalf("GET %s: %v %d %s", path, err, resp.StatusCode(), resp.Body())
					}
					n += len(resp.Body())
				}
				sink.Add(int64(n))
			})
		})
	}
}

// sink keeps benchmark results alive.
var sink atomic.Int64
