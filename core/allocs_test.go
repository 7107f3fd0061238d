//go:build !race

package core

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestRequestPathAllocs drives whole requests — client, gateway server,
// route match with parameters, rewrite, header hygiene, X-Forwarded-*,
// request id, pooled upstream exchange, response, metrics — over in-memory
// listeners and asserts that the steady state allocates nothing, in any
// goroutine. The access log is on but samples nothing (sample below 1e-9).
func TestRequestPathAllocs(t *testing.T) {
	testRequestPathAllocs(t, "access_log: {path: /dev/null, sample: 0.000000001}")
}

// TestRequestPathAllocsBalancers is the same over p2c, p2c_ewma and
// Maglev keyed by a header, with retries, passive health, a breaker and an
// active health checker running.
func TestRequestPathAllocsBalancers(t *testing.T) {
	const resilience = "\n    health: {active: {path: /healthz, interval: 100ms}}\n    circuit_breaker: {max_requests: 1000, max_pending: 1000}\n"
	f := func(name, balancer string) {
		t.Run(name, func(t *testing.T) {
			cfg := strings.Replace(benchConfig, `  users: {targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}]}`,
				"  users:\n    targets: [{url: \"http://10.0.0.1:80\"}, {url: \"http://10.0.0.2:80\"}]\n    "+balancer+resilience, 1)
			testRequestPathAllocs(t, "access_log: {path: off}", func(c *string) { *c = cfg })
		})
	}
	f("p2c", "balancer: p2c")
	f("p2c_ewma", "balancer: p2c_ewma")
	f("maglev", `balancer: consistent_hash`+"\n    "+`hash: {key: "header:X-User-ID", bounded_load: 1.25}`)
	f("ring ip", `balancer: consistent_hash`+"\n    "+`hash: {key: ip, algorithm: ring}`)
}

func testRequestPathAllocs(t *testing.T, extra string, cfgOpts ...func(*string)) {
	f := func(name, uri string, build func(req *fasthttp.Request)) {
		t.Helper()
		h := benchHarnessConfig(t, cfgOpts, extra)
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		do := func() {
			req.Reset()
			req.SetRequestURI(uri)
			build(req)
			if err := h.client.Do(req, resp); err != nil {
				t.Fatalf("%s: %s", name, err)
			}
			if resp.StatusCode() != fasthttp.StatusOK {
				t.Fatalf("%s: status %d; want 200; body %s", name, resp.StatusCode(), resp.Body())
			}
		}
		for i := 0; i < 100; i++ { // warm pools and buffers
			do()
		}
		if n := testing.AllocsPerRun(1000, do); n != 0 {
			t.Fatalf("%s: got %v allocs per request; want 0", name, n)
		}
	}
	f("GET with params and rewrite", "http://gw.local/api/users/42?x=1", func(req *fasthttp.Request) {})
	f("GET with hop-by-hop headers and request id", "http://gw.local/api/users/42", func(req *fasthttp.Request) {
		req.Header.Set("Connection", "keep-alive, X-Hop")
		req.Header.Set("X-Hop", "1")
		req.Header.Set("X-Request-Id", "abc-123")
		req.Header.Set("X-Forwarded-For", "1.2.3.4")
		req.Header.Set("X-User-ID", "user-7")
	})
	body := make1K()
	f("POST 1KiB", "http://gw.local/api/orders/new", func(req *fasthttp.Request) {
		req.Header.SetMethod("POST")
		req.SetBody(body)
	})
	f("catch-all 16KiB response", "http://gw.local/static/big/file.bin", func(req *fasthttp.Request) {})
}

// TestRequestPathAllocsAccessLog is the same with every request logged:
// the line buffers are preallocated and the writer goroutine reuses its
// buffer, so this allocates nothing either.
func TestRequestPathAllocsAccessLog(t *testing.T) {
	h := benchHarness(t, "access_log: {path: /dev/null}")
	expectNoAllocs(t, "every request in the access log", h.client, "User-Agent", "allocs-test")
}

// TestRequestPathAllocsTCP is the allocation guard over a real loopback
// TCP upstream, where the exchange takes send's write-then-wait path.
func TestRequestPathAllocsTCP(t *testing.T) {
	h := newTCPHarness(t, benchUpstream, "")
	expectNoAllocs(t, "over TCP", h.client)
}

// expectNoAllocs warms client's path to the gateway with GETs of
// /api/users/42 (with the optional header name and value), then asserts
// that a request allocates nothing.
func expectNoAllocs(t *testing.T, what string, client *fasthttp.Client, header ...string) {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	do := func() {
		req.Reset()
		req.SetRequestURI("http://gw.local/api/users/42")
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("%s: status %d, %v", what, resp.StatusCode(), err)
		}
	}
	for i := 0; i < 200; i++ {
		do()
	}
	n := testing.AllocsPerRun(1000, do)
	t.Logf("allocations per request, %s: %v", what, n)
	if n != 0 {
		t.Fatalf("%s: got %v allocs per request; want 0", what, n)
	}
}
