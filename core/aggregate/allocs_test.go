//go:build !race

package aggregate_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/coretest"
)

// TestAllocs: a fan-out whose groups are placed as they are allocates
// nothing per request, partial answers included; decoding (transforms,
// root merges) allocates its maps, which BenchmarkAggregate reports.
func TestAllocs(t *testing.T) {
	gw := start(t)
	f := func(uri string, status int) {
		t.Helper()
		coretest.NoAllocsPerRequest(t, uri, gw.Client, func(req *fasthttp.Request) { req.SetRequestURI("http://gw" + uri) }, func(resp *fasthttp.Response) {
			if resp.StatusCode() != status {
				t.Fatalf("GET %s: got %d; want %d: %s", uri, resp.StatusCode(), status, resp.Body())
			}
		})
	}
	f("/whole", 200)
	f("/whole-partial", 200)
}
