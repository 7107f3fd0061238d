//go:build !race

package ratelimit

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/coretest"
)

// TestRequestPathAllocs drives whole requests through a real gateway
// (client, server, route match, this filter, proxy to the in-memory
// upstream, After) and asserts the steady state allocates nothing with a
// local limit (keyed by IP and a header, every header flavour) plus a
// concurrency cap, and with a global hybrid limit on a known key.
func TestRequestPathAllocs(t *testing.T) {
	f := func(name, cfg string) {
		t.Helper()
		h := newHarness(t, cfg, nil)
		coretest.NoAllocsPerRequest(t, name, h.g.PeerClient("192.0.2.1"), func(req *fasthttp.Request) {
			req.SetRequestURI("http://gw.local/api/x")
			req.Header.Set("X-Tenant", "acme")
		}, func(resp *fasthttp.Response) {
			if resp.StatusCode() != fasthttp.StatusOK || len(resp.Header.Peek("RateLimit")) == 0 {
				t.Fatalf("%s: status %d, RateLimit %q; want 200 with RateLimit", name, resp.StatusCode(), resp.Header.Peek("RateLimit"))
			}
		})
	}
	f("local", `
routes:
  - name: api
    upstream: users
    rate_limit:
      - {rate: 1000000, key: "ip+header:X-Tenant", headers: both}
      - {rate: 1000000, per: 1h, key: route}
    concurrency: {max: 100, queue: 10, wait: 1s}
`)
	f("local, keyed concurrency", `
routes:
  - {upstream: users, rate_limit: {rate: 1000000}, concurrency: {max: 100, key: "header:X-Tenant"}}
`)
	r := startRedis(t)
	f("global hybrid", `
redis: {address: "`+r.Addr()+`"}
routes:
  - {upstream: users, rate_limit: {rate: 1000000, key: "ip+header:X-Tenant", scope: global}}
`)
}
