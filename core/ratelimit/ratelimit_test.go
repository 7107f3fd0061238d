package ratelimit

import (
	"bufio"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/limiter"
)

func TestHeaderValues(t *testing.T) {
	limits := []limit{
		{name: "10-per-1s", quota: 10, window: 1, ietf: true},
		{name: "legacy-only", quota: 5, window: 60, legacy: true},
		{name: "daily", quota: 1000, window: 86400, ietf: true},
	}
	if got, want := string(appendPolicy(nil, limits)), `"10-per-1s";q=10;w=1, "daily";q=1000;w=86400`; got != want {
		t.Fatalf("RateLimit-Policy got %q; want %q", got, want)
	}
	f := func(d limiter.Decision, want string) {
		t.Helper()
		if got := string(appendRateLimit(nil, &limits[0], d)); got != want {
			t.Fatalf("RateLimit for %+v got %q; want %q", d, got, want)
		}
	}
	f(limiter.Decision{Allowed: true, Limit: 10, Remaining: 9, ResetAfter: 100 * time.Millisecond}, `"10-per-1s";r=9;t=1`)
	f(limiter.Decision{Limit: 10, ResetAfter: 2500 * time.Millisecond, RetryAfter: time.Second}, `"10-per-1s";r=0;t=3`)
	f(limiter.Decision{Allowed: true, Limit: 10, Remaining: 10}, `"10-per-1s";r=10;t=0`)
}

func TestKeyAppend(t *testing.T) {
	f := func(spec string, headers []string, ip, want string) {
		t.Helper()
		k, err := compileKey(spec)
		if err != nil {
			t.Fatalf("compileKey(%q): %s", spec, err)
		}
		var ctx fasthttp.RequestCtx
		for _, hv := range headers {
			name, v, _ := strings.Cut(hv, ":")
			ctx.Request.Header.Add(name, v)
		}
		r := &core.Request{ClientIP: netip.MustParseAddr(ip)}
		if got := string(k.append(nil, &ctx, r)); got != want {
			t.Fatalf("key %q: got %q; want %q", spec, got, want)
		}
	}
	f("ip", nil, "192.0.2.7", "192.0.2.7")
	f("ip", nil, "2001:db8::1", "2001:db8::1")
	f("header:x-tenant", []string{"X-Tenant:acme"}, "192.0.2.7", "acme")
	f("header:X-Tenant", nil, "192.0.2.7", "") // missing: the shared empty key
	f("ip+header:X-Tenant", []string{"X-Tenant:acme"}, "192.0.2.7", "192.0.2.7\nacme")
	f("header:A+header:B", []string{"A:x", "B:y"}, "192.0.2.7", "x\ny")
	f("route", []string{"A:x"}, "192.0.2.7", "")
}

// TestDeny checks the 429 and every header on allowed and denied
// responses of a route with two limits, with exact values: rate 100/s
// never binds here, the hourly limit of 2 does.
func TestDeny(t *testing.T) {
	h := newHarness(t, `
routes:
  - name: api
    upstream: users
    rate_limit:
      - {rate: 100}
      - {name: hourly, rate: 2, per: 1h, headers: both}
`, nil)
	policy := `"100-per-1s";q=100;w=1, "hourly";q=2;w=3600`
	f := func(status int, want map[string]string) {
		t.Helper()
		resp := h.g.GetFrom("192.0.2.1", "/x", "X-Request-ID: req-1")
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != status {
			t.Fatalf("status got %d; want %d; body %s", resp.StatusCode(), status, resp.Body())
		}
		for k, v := range want {
			if got := string(resp.Header.Peek(k)); got != v {
				t.Fatalf("status %d: %s got %q; want %q", status, k, got, v)
			}
		}
	}
	// hourly is the most restrictive: its remaining count is the lowest
	f(200, map[string]string{"RateLimit-Policy": policy, "RateLimit": `"hourly";r=1;t=1800`,
		"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "1800", "Retry-After": ""})
	f(200, map[string]string{"RateLimit": `"hourly";r=0;t=3600`, "X-RateLimit-Remaining": "0"})
	f(429, map[string]string{"RateLimit-Policy": policy, "RateLimit": `"hourly";r=0;t=3600`,
		"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3600", "Retry-After": "1800",
		"Content-Type": "application/json", "X-Request-ID": "req-1"})
	resp := h.g.GetFrom("192.0.2.1", "/x", "X-Request-ID: req-2")
	defer fasthttp.ReleaseResponse(resp)
	if got, want := string(resp.Body()), `{"error":"rate limit exceeded","status":429,"request_id":"req-2"}`+"\n"; got != want {
		t.Fatalf("429 body got %q; want %q", got, want)
	}
	if h.g.StatusFrom("192.0.2.2", "/x") != 200 {
		t.Fatal("another client IP: want its own bucket")
	}
	if got := counter(h.gw.Metrics().Set(), `fastgate_ratelimit_rejected_total{route="api"}`); got != 2 {
		t.Fatalf(`fastgate_ratelimit_rejected_total{route="api"} got %d; want 2`, got)
	}
}

func counter(set *metrics.Set, name string) uint64 {
	return set.GetOrCreateCounter(name).Get()
}

// TestClientIPKey checks that key: ip is the trusted-proxy-aware client
// IP: a forged leftmost X-Forwarded-For from an untrusted peer changes
// nothing, and behind a trusted proxy the rightmost untrusted entry counts.
func TestClientIPKey(t *testing.T) {
	h := newHarness(t, `
server: {trusted_proxies: ["10.9.0.0/16"]}
routes:
  - {upstream: users, rate_limit: {rate: 1, per: 1h}}
`, nil)
	f := func(peer, xff string, want int) {
		t.Helper()
		var hs []string
		if xff != "" {
			hs = append(hs, "X-Forwarded-For: "+xff)
		}
		if got := h.g.StatusFrom(peer, "/", hs...); got != want {
			t.Fatalf("from %s with X-Forwarded-For %q: status %d; want %d", peer, xff, got, want)
		}
	}
	f("192.0.2.1", "", 200)
	f("192.0.2.1", "198.51.100.1", 429)         // untrusted peer: forged XFF ignored, same bucket
	f("192.0.2.1", "198.51.100.2", 429)         // ... whatever it says
	f("10.9.0.1", "198.51.100.1", 200)          // trusted proxy: the client is 198.51.100.1
	f("10.9.0.2", "198.51.100.1", 429)          // another proxy, same client
	f("10.9.0.1", "6.6.6.6, 203.0.113.5", 200)  // rightmost untrusted entry, not the leftmost
	f("10.9.0.1", "7.7.7.7, 203.0.113.5", 429)  // a forged leftmost entry does not escape the bucket
	f("10.9.0.1", "203.0.113.5, 10.9.0.3", 429) // trusted entries are skipped
}

func TestHeaderKey(t *testing.T) {
	h := newHarness(t, `
routes:
  - {upstream: users, rate_limit: {rate: 1, per: 1h, key: "header:X-Tenant", headers: none}}
`, nil)
	f := func(peer, tenant string, want int) {
		t.Helper()
		var hs []string
		if tenant != "" {
			hs = append(hs, "X-Tenant: "+tenant)
		}
		resp := h.g.GetFrom(peer, "/", hs...)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != want {
			t.Fatalf("tenant %q from %s: status %d; want %d", tenant, peer, resp.StatusCode(), want)
		}
		if v := resp.Header.Peek("RateLimit"); len(v) > 0 {
			t.Fatalf("headers: none: got RateLimit %q", v)
		}
		if want == 429 && string(resp.Header.Peek("Retry-After")) != "3600" {
			t.Fatalf("headers: none: Retry-After got %q; want 3600", resp.Header.Peek("Retry-After"))
		}
	}
	f("192.0.2.1", "a", 200)
	f("192.0.2.2", "a", 429) // the header, not the IP
	f("192.0.2.1", "b", 200)
	f("192.0.2.1", "", 200) // no header: the shared empty key
	f("192.0.2.2", "", 429)
}

// TestDefaultAndOptOut: the top-level rate_limit applies to routes that set
// none, per route; rate_limit: off opts out.
func TestDefaultAndOptOut(t *testing.T) {
	h := newHarness(t, `
rate_limit: {rate: 1, per: 1h}
routes:
  - {name: a, match: {path: /a}, upstream: users}
  - {name: b, match: {path: /b}, upstream: users}
  - {name: free, match: {path: /free}, upstream: users, rate_limit: off}
`, nil)
	for _, c := range []struct {
		path string
		want int
	}{{"/a", 200}, {"/a", 429}, {"/b", 200}, {"/b", 429}, {"/free", 200}, {"/free", 200}} {
		if got := h.g.StatusFrom("192.0.2.1", c.path); got != c.want {
			t.Fatalf("GET %s: status %d; want %d", c.path, got, c.want)
		}
	}
}

// TestReloadKeepsBuckets: an unchanged route keeps its Filter and buckets
// across a reload; a changed limit starts afresh, and the old Filter is
// closed once drained.
func TestReloadKeepsBuckets(t *testing.T) {
	cfg := `
routes:
  - {name: api, upstream: users, rate_limit: {rate: 1, per: 1h}}
`
	h := newHarness(t, cfg, nil)
	if h.g.StatusFrom("192.0.2.1", "/") != 200 || h.g.StatusFrom("192.0.2.1", "/") != 429 {
		t.Fatal("want 200 then 429 before the reload")
	}
	if n := h.rec.count(); n != 1 {
		t.Fatalf("built %d filters; want 1", n)
	}
	first := h.rec.last()
	if err := h.gw.Apply(mustConfig(t, cfg+"  - {name: other, match: {path: /o}, upstream: users}\n")); err != nil {
		t.Fatal(err)
	}
	if got := h.g.StatusFrom("192.0.2.1", "/"); got != 429 {
		t.Fatalf("after a reload with the same limit: status %d; want 429 (bucket kept)", got)
	}
	if err := h.gw.Apply(mustConfig(t, `
routes:
  - {name: api, upstream: users, rate_limit: {rate: 2, per: 1h}}
`)); err != nil {
		t.Fatal(err)
	}
	if got := h.g.StatusFrom("192.0.2.1", "/"); got != 200 {
		t.Fatalf("after a reload that changes the limit: status %d; want 200 (new bucket)", got)
	}
	// Closed once the old snapshot has drained; the bound only keeps a
	// broken build from hanging.
	deadline := time.Now().Add(20 * time.Second)
	for !first.closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the replaced filter was not closed after the reload drained")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := h.rec.count(); n != 2 {
		t.Fatalf("built %d filters after two reloads; want 2 (the unchanged route's was kept)", n)
	}
	if got := counter(h.gw.Metrics().Set(), `fastgate_ratelimit_rejected_total{route="api"}`); got != 2 {
		t.Fatalf("rejections of the route survive the reload: got %d; want 2", got)
	}
}

// TestConcurrency: max 1 in flight, a queue of 1 waiting up to 300ms.
func TestConcurrency(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	h := newHarness(t, `
routes:
  - {name: slow, upstream: users, concurrency: {max: 1, queue: 1, wait: 300ms}}
`, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		<-release
		ctx.WriteString("ok") //nolint:errcheck
	})
	peers := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
	for _, p := range peers {
		h.g.PeerClient(p)
	}
	first, second := make(chan int, 1), make(chan int, 1)
	go func() { first <- h.g.StatusFrom(peers[0], "/") }()
	<-entered // the first holds the slot
	go func() { second <- h.g.StatusFrom(peers[1], "/") }()
	f := h.rec.last()
	for deadline := time.Now().Add(20 * time.Second); f.conc.route.Waiting() != 1; { // the second is queued
		if time.Now().After(deadline) {
			t.Fatal("the second request never queued")
		}
		runtime.Gosched()
	}
	resp := h.g.GetFrom(peers[2], "/") // the queue is full: at once
	if resp.StatusCode() != 503 || string(resp.Header.Peek("Retry-After")) != "1" {
		t.Fatalf("queue full: status %d Retry-After %q; want 503, 1", resp.StatusCode(), resp.Header.Peek("Retry-After"))
	}
	fasthttp.ReleaseResponse(resp)
	// The queued one gives up after its 300ms wait, while the first still
	// holds the slot.
	if got := <-second; got != 503 {
		t.Fatalf("queued request whose wait expired: %d; want 503", got)
	}
	close(release)
	if got := <-first; got != 200 {
		t.Fatalf("held request: %d; want 200", got)
	}
	if got := h.g.StatusFrom(peers[1], "/"); got != 200 {
		t.Fatalf("after the release: status %d; want 200 (slot freed by Done)", got)
	}
	if got := counter(h.gw.Metrics().Set(), `fastgate_concurrency_rejected_total{route="slow"}`); got != 2 {
		t.Fatalf("fastgate_concurrency_rejected_total got %d; want 2", got)
	}
}

// TestKeyedConcurrency: max 1 per client IP, with 429 as the status.
func TestKeyedConcurrency(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	h := newHarness(t, `
routes:
  - {upstream: users, concurrency: {max: 1, key: ip, status: 429}, rate_limit: {rate: 1000}}
`, func(ctx *fasthttp.RequestCtx) {
		entered <- struct{}{}
		<-release
	})
	h.g.PeerClient("192.0.2.1")
	h.g.PeerClient("192.0.2.2")
	done := make(chan int)
	go func() { done <- h.g.StatusFrom("192.0.2.1", "/") }()
	<-entered
	if got := h.g.StatusFrom("192.0.2.1", "/"); got != 429 {
		t.Fatalf("same IP while one is in flight: %d; want 429", got)
	}
	go func() { done <- h.g.StatusFrom("192.0.2.2", "/") }()
	<-entered // another IP has its own slot
	close(release)
	if a, b := <-done, <-done; a != 200 || b != 200 {
		t.Fatalf("in-flight requests got %d, %d; want 200, 200", a, b)
	}
	if got := h.g.StatusFrom("192.0.2.1", "/"); got != 200 {
		t.Fatalf("after release: %d; want 200", got)
	}
}

func TestCheckMode(t *testing.T) {
	b := NewBuilder(Options{})
	cfg := mustConfig(t, `
redis: {address: "127.0.0.1:1"}
routes:
  - {upstream: users, rate_limit: {rate: 1, scope: global}, concurrency: {max: 1}}
`)
	snap, err := core.Compile(cfg, &core.Options{Filters: []core.FilterBuilder{b}})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	snap.Close()
	if len(b.clients) != 0 {
		t.Fatal("check (core.Compile) created a Redis client")
	}
}

// TestConcurrencyHeldForStreamedBody: a concurrency slot is held until a
// streamed (chunked) body has been written to the client, not only until
// its head.
func TestConcurrencyHeldForStreamedBody(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, `
routes:
  - {name: download, upstream: users, concurrency: {max: 1}}
`, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			w.WriteString("first") //nolint:errcheck
			w.Flush()              //nolint:errcheck
			<-release
			w.WriteString("second") //nolint:errcheck
		})
	})
	conn, err := h.g.DialFrom("192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: gw.local\r\n\r\n")) //nolint:errcheck
	br := bufio.NewReader(conn)
	for { // the head and the first chunk arrive while the upstream waits
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, "first") {
			break
		}
	}
	if got := h.g.StatusFrom("192.0.2.2", "/"); got != 503 {
		t.Fatalf("a second request while a body streams: %d; want 503 (the slot is held)", got)
	}
	close(release)
	for { // the rest of the body, to the last chunk
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "0\r\n" {
			break
		}
	}
	// The slot is released once the body is written; the bound only keeps
	// a broken build from hanging.
	deadline := time.Now().Add(20 * time.Second)
	for h.rec.last().conc.route.InFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slot was not released after the streamed body")
		}
		runtime.Gosched()
	}
	if got := h.g.StatusFrom("192.0.2.2", "/"); got != 200 {
		t.Fatalf("after the body: %d; want 200", got)
	}
}
