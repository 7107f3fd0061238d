//go:build !race

package ipfilter

import (
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/coretest"
)

// TestRequestPathAllocs drives whole admitted and refused requests through
// a real gateway and asserts the steady state allocates nothing.
func TestRequestPathAllocs(t *testing.T) {
	h := newHarness(t, `
ip: {deny: ["203.0.113.0/24"]}
routes:
  - {upstream: users, ip: {allow: ["10.0.0.0/8", "192.0.2.0/24"]}}
`)
	f := func(peer string, want int) {
		t.Helper()
		coretest.NoAllocsPerRequest(t, "peer "+peer, h.g.PeerClient(peer), func(req *fasthttp.Request) {
			req.SetRequestURI("http://gw.local/x")
		}, func(resp *fasthttp.Response) {
			if resp.StatusCode() != want {
				t.Fatalf("peer %s: status got %d; want %d", peer, resp.StatusCode(), want)
			}
		})
	}
	f("192.0.2.1", 200)
	f("198.51.100.1", 403)
	f("203.0.113.1", 403)
}

func TestContainsAllocs(t *testing.T) {
	tb := table(t, "10.0.0.0/8", "2001:db8::/32")
	a4, a6 := netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(1000, func() { tb.Contains(a4); tb.Contains(a6) }); n != 0 {
		t.Fatalf("Contains: got %v allocs; want 0", n)
	}
}
