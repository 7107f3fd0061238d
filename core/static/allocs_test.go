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
		coretest.NoAllocsPerRequest(t, "GET "+uri, gw.Client, func(req *fasthttp.Request) {
			req.SetRequestURI(uri)
		}, func(resp *fasthttp.Response) {
			if resp.StatusCode() != status {
				t.Fatalf("GET %s: %d; want %d", uri, resp.StatusCode(), status)
			}
		})
	}
	f("http://gw/hello/ada", 200)
	f("http://gw/old/ada?x=1", 302)
}
