//go:build !race

package cors

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/coretest"
)

// TestRequestPathAllocs drives whole preflights (answered, refused) and
// actual requests (allowed origin, upstream Vary merged) through a real
// gateway and asserts the steady state allocates nothing.
func TestRequestPathAllocs(t *testing.T) {
	h := newHarness(t, corsConfig)
	f := func(name, method, path string, want int, headers ...string) {
		t.Helper()
		coretest.NoAllocsPerRequest(t, name, h.g.Client, func(req *fasthttp.Request) {
			req.Header.SetMethod(method)
			req.SetRequestURI("http://gw.local" + path)
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
		}, func(resp *fasthttp.Response) {
			if resp.StatusCode() != want {
				t.Fatalf("%s: status got %d; want %d", name, resp.StatusCode(), want)
			}
		})
	}
	f("preflight", "OPTIONS", "/creds", 204, "Origin", "https://a.b.example.org",
		"Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "content-type, x-trace")
	f("preflight reflected", "OPTIONS", "/reflect", 204, "Origin", "https://app.example.com",
		"Access-Control-Request-Method", "PATCH", "Access-Control-Request-Headers", "x-a")
	f("preflight refused", "OPTIONS", "/creds", 403, "Origin", "https://evil.com", "Access-Control-Request-Method", "PUT")
	f("actual", "GET", "/creds", 200, "Origin", "https://app.example.com", "X-Up-Vary", "Accept-Encoding")
	f("actual, no origin", "GET", "/creds", 200)
}
