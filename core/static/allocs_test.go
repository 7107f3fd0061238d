//go:build !race

package static_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
	"fastgate/core/redirect"
	"fastgate/core/static"
)

// TestAllocs: a static route behind a filter that reads a parameter and
// sets a consumer, and a redirect route, allocate nothing per request.
func TestAllocs(t *testing.T) {
	gw := coretest.Start(t, `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - {match: {path: "/hello/{name}"}, static: {body: "hello\n", headers: {Cache-Control: no-store}}}
  - {match: {path: "/old/{name}"}, redirect: {url: "https://new.example.com/u/{name}", keep_query: true}}
`, core.Options{
		Filters:   []core.FilterBuilder{greeterBuilder{}},
		Terminals: []core.TerminalBuilder{static.Builder{}, redirect.Builder{}},
	}, nil)
	f := func(uri string, status int) {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		do := func() {
			req.Reset()
			req.SetRequestURI(uri)
			if err := gw.Client.Do(req, resp); err != nil || resp.StatusCode() != status {
				t.Fatalf("GET %s: %d %v; want %d", uri, resp.StatusCode(), err, status)
			}
		}
		for i := 0; i < 100; i++ {
			do()
		}
		if n := testing.AllocsPerRun(1000, do); n != 0 {
			t.Fatalf("GET %s: %v allocs per request; want 0", uri, n)
		}
	}
	f("http://gw/hello/ada", 200)
	f("http://gw/old/ada?x=1", 302)
}
