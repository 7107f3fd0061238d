package aggregate_test

import (
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/aggregate"
	"fastgate/core/cache"
	"fastgate/core/coretest"
)

// TestCachedAggregate: a cache on an aggregate route stores the merged
// answer; the second request is a HIT and calls no backend.
func TestCachedAggregate(t *testing.T) {
	var calls atomic.Int64
	jsonBody := func(body string) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			calls.Add(1)
			ctx.SetContentType("application/json")
			ctx.SetBodyString(body)
		}
	}
	c := cache.NewBuilder(cache.Options{})
	t.Cleanup(c.Close)
	gw := coretest.Start(t, `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
  orders: {targets: [{url: "http://10.0.0.2:80"}]}
routes:
  - name: dash
    match: {path: "/dash/{id}"}
    aggregate:
      backends:
        - {upstream: users, path: "/users/{id}", group: user, required: true}
        - {upstream: orders, path: "/orders?user={id}", group: orders, collection: true}
    cache: {ttl: 1m}
`, core.Options{Filters: []core.FilterBuilder{c}, Terminals: []core.TerminalBuilder{aggregate.Builder{}}},
		map[string]fasthttp.RequestHandler{
			"10.0.0.1:80": jsonBody(`{"id":1,"name":"Ada"}`),
			"10.0.0.2:80": jsonBody(`[{"id":7}]`),
		})
	const want = `{"orders":[{"id":7}],"user":{"id":1,"name":"Ada"}}`
	for i, xcache := range []string{"MISS", "HIT"} {
		resp := gw.Do("GET", "http://gw/dash/1")
		if resp.StatusCode() != 200 || string(resp.Header.Peek("X-Cache")) != xcache || !sameJSON(string(resp.Body()), want) {
			t.Fatalf("request %d: %d, X-Cache %q, %s; want 200, %s, %s", i+1, resp.StatusCode(), resp.Header.Peek("X-Cache"), resp.Body(), xcache, want)
		}
		fasthttp.ReleaseResponse(resp)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("backend calls got %d; want 2 (one fan-out)", n)
	}
}

// TestQueryArg: {query.NAME} in a backend path is the client's query
// argument, escaped, and empty when the client has none.
func TestQueryArg(t *testing.T) {
	var got atomic.Value
	gw := coretest.Start(t, `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - name: q
    match: {path: "/q/{id}"}
    aggregate:
      backends: [{upstream: users, path: "/items/{id}?page={query.page}&x=1", group: items}]
`, core.Options{Terminals: []core.TerminalBuilder{aggregate.Builder{}}},
		map[string]fasthttp.RequestHandler{"10.0.0.1:80": func(ctx *fasthttp.RequestCtx) {
			got.Store(string(ctx.RequestURI()))
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{}`)
		}})
	f := func(uri, want string) {
		t.Helper()
		resp := gw.Do("GET", uri)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != 200 || got.Load() != want {
			t.Fatalf("GET %s: %d, the backend got %v; want 200 and %s", uri, resp.StatusCode(), got.Load(), want)
		}
	}
	f("http://gw/q/7?page=2", "/items/7?page=2&x=1")
	f("http://gw/q/7?page=a%26b", "/items/7?page=a%26b&x=1")
	f("http://gw/q/7", "/items/7?page=&x=1")
}
