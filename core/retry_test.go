package core

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// counted answers with status and counts the requests by method.
type counted struct {
	name   string
	status int
	delay  time.Duration
	gets   atomic.Int64
	posts  atomic.Int64
}

func (c *counted) handler(ctx *fasthttp.RequestCtx) {
	if ctx.IsPost() {
		c.posts.Add(1)
	} else {
		c.gets.Add(1)
	}
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	ctx.Response.Header.Set("X-Served-By", c.name)
	ctx.SetStatusCode(c.status)
	ctx.WriteString(c.name) //nolint:errcheck
}

func TestRetryGoesToAnotherTarget(t *testing.T) {
	bad := &counted{name: "bad", status: 503}
	good := &counted{name: "good", status: 200}
	h := newHarness(t, `
upstreams:
  u:
    targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}]
    health: {passive: {consecutive_failures: 0}}
routes: [{upstream: u}]
`, map[string]fasthttp.RequestHandler{"10.0.0.1:80": bad.handler, "10.0.0.2:80": good.handler})
	for i := 0; i < 10; i++ {
		body := h.expectStatus("/x", 200)
		if string(body) != "good" {
			t.Fatalf("GET %d: body got %q; want %q", i, body, "good")
		}
	}
	// Each request reached good exactly once, and each attempt on bad was
	// retried (on good: never twice on bad).
	g, b := good.gets.Load(), bad.gets.Load()
	if g != 10 || b == 0 {
		t.Fatalf("attempts: good got %d, bad got %d; want 10 and > 0", g, b)
	}
	// POST got a response: bytes were written, so it is not retried.
	for i := 0; i < 4; i++ {
		resp := h.do(func(req *fasthttp.Request) {
			req.SetRequestURI("http://gw.local/x")
			req.Header.SetMethod("POST")
			req.SetBodyString("p")
		})
		fasthttp.ReleaseResponse(resp)
	}
	if g, b := good.posts.Load(), bad.posts.Load(); g+b != 4 || b == 0 {
		t.Fatalf("POSTs: good got %d, bad got %d; want 4 in all, none retried", g, b)
	}
	if n := h.gw.metrics.upstream("u").retries.Get(); n != uint64(b) {
		t.Fatalf("retries metric got %d; want %d, one per attempt on bad", n, b)
	}
}

func TestRetryPOSTOnConnectError(t *testing.T) {
	good := &counted{name: "good", status: 200}
	// 10.0.0.1 refuses connections: nothing was written, so even a POST
	// is retried on the other target.
	h := newHarness(t, `
upstreams:
  u:
    targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}]
    health: {passive: {consecutive_failures: 0}}
routes: [{upstream: u}]
`, map[string]fasthttp.RequestHandler{"10.0.0.2:80": good.handler})
	for i := 0; i < 6; i++ {
		resp := h.do(func(req *fasthttp.Request) {
			req.SetRequestURI("http://gw.local/x")
			req.Header.SetMethod("POST")
		})
		if resp.StatusCode() != 200 {
			t.Fatalf("POST %d: status got %d; want 200; body %s", i, resp.StatusCode(), resp.Body())
		}
		fasthttp.ReleaseResponse(resp)
	}
	if n := good.posts.Load(); n != 6 {
		t.Fatalf("good target got %d POSTs; want 6", n)
	}
}

// TestRetryAfterRefusalDoesNotWait: a refused connection is retried on
// another target at once, not after the backoff, so the budget is held
// only for the retry itself. With a 10s backoff and a 1s route timeout, a
// backoff would leave no time for the retry (and hold the budget).
func TestRetryAfterRefusalDoesNotWait(t *testing.T) {
	good := &counted{name: "good", status: 200}
	h := newHarness(t, `
upstreams:
  u:
    targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}]
    retries: {min_retries: 1, budget: 0.01, backoff: {base: 10s, max: 10s}}
    health: {passive: {consecutive_failures: 0}}
routes: [{upstream: u, timeout: 1s}]
`, map[string]fasthttp.RequestHandler{"10.0.0.2:80": good.handler})
	for i := 0; i < 20; i++ {
		h.expectStatus("/x", 200)
	}
	if n := h.gw.Snapshot().upstreams["u"].budget.Retries(); n != 0 {
		t.Fatalf("retries still held by the budget: %d; want 0", n)
	}
}

func TestPerTryTimeoutGETRetriedPOSTNot(t *testing.T) {
	slow := &counted{name: "slow", status: 200, delay: 400 * time.Millisecond}
	good := &counted{name: "good", status: 200}
	h := newHarness(t, `
upstreams:
  u:
    targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}]
    timeouts: {per_try: 100ms, request: 2s}
    retries: {backoff: {base: 1ms, max: 1ms}}
    health: {passive: {consecutive_failures: 0}}
routes: [{upstream: u}]
`, map[string]fasthttp.RequestHandler{"10.0.0.1:80": slow.handler, "10.0.0.2:80": good.handler})
	for i := 0; i < 4; i++ {
		h.expectStatus("/x", 200)
	}
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		resp := h.do(func(req *fasthttp.Request) {
			req.SetRequestURI("http://gw.local/x")
			req.Header.SetMethod("POST")
		})
		codes[resp.StatusCode()]++
		fasthttp.ReleaseResponse(resp)
	}
	if s, g := slow.posts.Load(), good.posts.Load(); s != int64(codes[504]) || g != int64(codes[200]) || s+g != 4 || s == 0 {
		t.Fatalf("POSTs: slow got %d, good %d, client codes %v; want each POST once, slow ones 504", s, g, codes)
	}
}

func TestRetryBudgetCaps(t *testing.T) {
	ups := []*counted{
		{name: "a", status: 503, delay: 20 * time.Millisecond},
		{name: "b", status: 503, delay: 20 * time.Millisecond},
		{name: "c", status: 503, delay: 20 * time.Millisecond},
	}
	h := newHarness(t, `
upstreams:
  u:
    targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}, {url: "http://10.0.0.3:80"}]
    retries: {attempts: 3, budget: 0.1, min_retries: 1, backoff: {base: 1ms, max: 1ms}}
    health: {passive: {consecutive_failures: 0}}
routes: [{upstream: u}]
`, map[string]fasthttp.RequestHandler{"10.0.0.1:80": ups[0].handler, "10.0.0.2:80": ups[1].handler, "10.0.0.3:80": ups[2].handler})
	const clients, each = 10, 5
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				resp := h.get("http://gw.local/x")
				fasthttp.ReleaseResponse(resp)
			}
		}()
	}
	wg.Wait()
	var attempts int64
	for _, u := range ups {
		attempts += u.gets.Load()
	}
	um := h.gw.metrics.upstream("u")
	// Without a budget every request would be tried 3 times (150); with
	// at most max(1, 0.1 × 10) = 1 retry at a time, far fewer.
	if attempts >= 2*clients*each || um.budgetExhausted.Get() == 0 {
		t.Fatalf("attempts got %d, budget exhausted %d times; want < %d and > 0", attempts, um.budgetExhausted.Get(), 2*clients*each)
	}
	t.Logf("%d requests, %d attempts, %d retries, budget exhausted %d times", clients*each, attempts, um.retries.Get(), um.budgetExhausted.Get())
}

func TestBreakerRejects(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	h := newHarness(t, `
upstreams:
  u:
    targets: [{url: "http://10.0.0.1:80"}]
    circuit_breaker: {max_requests: 1}
routes: [{upstream: u}]
`, map[string]fasthttp.RequestHandler{"10.0.0.1:80": func(ctx *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-release
	}})
	done := make(chan int)
	go func() {
		resp := h.get("http://gw.local/slow")
		done <- resp.StatusCode()
		fasthttp.ReleaseResponse(resp)
	}()
	<-arrived
	resp := h.get("http://gw.local/x")
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 503 || string(resp.Header.Peek("Retry-After")) != "1" {
		t.Fatalf("over max_requests: got %d, Retry-After %q; want 503 and 1; body %s", resp.StatusCode(), resp.Header.Peek("Retry-After"), resp.Body())
	}
	if ct := string(resp.Header.ContentType()); ct != "application/json" {
		t.Fatalf("breaker body Content-Type got %q; want application/json", ct)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("admitted request: status got %d; want 200", code)
	}
	if n := h.gw.metrics.upstream("u").breakerRequests.Get(); n != 1 {
		t.Fatalf("breaker rejections metric got %d; want 1", n)
	}
	h.expectStatus("/x", 200) // the slot is free again
}

func TestConsistentHashSticks(t *testing.T) {
	f := func(algorithm, key string, header func(i int) string) {
		t.Helper()
		handlers := map[string]fasthttp.RequestHandler{}
		cfg := "upstreams:\n  u:\n    balancer: consistent_hash\n    hash: {key: \"" + key + "\", algorithm: " + algorithm + "}\n    targets:\n"
		for i := 1; i <= 4; i++ {
			addr := "10.0.0." + strconv.Itoa(i) + ":80"
			handlers[addr] = named("t" + strconv.Itoa(i))
			cfg += "      - {url: \"http://" + addr + "\"}\n"
		}
		cfg += "routes: [{upstream: u}]\n"
		h := newHarness(t, cfg, handlers)
		used := map[string]bool{}
		for user := 0; user < 20; user++ {
			var first string
			for rep := 0; rep < 5; rep++ {
				resp := h.get("http://gw.local/p/"+strconv.Itoa(user)+"?user="+strconv.Itoa(user), header(user))
				got := string(resp.Header.Peek("X-Served-By"))
				fasthttp.ReleaseResponse(resp)
				if rep == 0 {
					first = got
				} else if got != first {
					t.Fatalf("%s %s: key %d went to %s, then %s; want the same target", algorithm, key, user, first, got)
				}
			}
			used[first] = true
		}
		if len(used) < 2 {
			t.Fatalf("%s %s: 20 keys all went to %v; want a spread", algorithm, key, used)
		}
	}
	hdr := func(i int) string { return "X-User-ID: u" + strconv.Itoa(i) }
	cookie := func(i int) string { return "Cookie: sid=s" + strconv.Itoa(i) }
	none := func(int) string { return "X-None: 1" }
	f("maglev", "header:X-User-ID", hdr)
	f("ring", "header:X-User-ID", hdr)
	f("maglev", "cookie:sid", cookie)
	f("maglev", "query:user", none)
	f("ring", "path", none)
}

func TestActiveHealthAndNoGoroutineLeak(t *testing.T) {
	before := healthGoroutines.Load()
	var sick atomic.Bool
	sick.Store(true)
	a := func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/healthz" && sick.Load() {
			ctx.SetStatusCode(503)
			return
		}
		named("a")(ctx)
	}
	cfg := `
upstreams:
  u:
    targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}]
    health: {active: {path: /healthz, interval: 50ms, timeout: 100ms, healthy: 1, unhealthy: 1}}
routes: [{upstream: u}]
`
	h := newHarness(t, cfg, map[string]fasthttp.RequestHandler{"10.0.0.1:80": a, "10.0.0.2:80": named("b")})
	waitFor(t, "a marked down", func() bool { return !h.gw.Upstreams()[0].Targets[0].Healthy })
	for i := 0; i < 6; i++ {
		resp := h.get("http://gw.local/x")
		if by := string(resp.Header.Peek("X-Served-By")); by != "b" {
			t.Fatalf("request %d went to %q while a is down; want b", i, by)
		}
		fasthttp.ReleaseResponse(resp)
	}
	sick.Store(false)
	waitFor(t, "a healthy again", func() bool { return h.gw.Upstreams()[0].Targets[0].Healthy })

	// A reload that keeps the health settings keeps the checker; one that
	// changes them replaces it. Neither leaks a goroutine.
	for _, interval := range []string{"50ms", "50ms", "60ms"} {
		c := mustConfig(t, cfg[:len(cfg)-len("routes: [{upstream: u}]\n")]+"routes: [{upstream: u, name: r"+interval+"}]\n")
		c.Upstreams["u"].Health.Active.Interval.Set(interval) //nolint:errcheck
		if err := h.gw.Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	h.close()
	if n := healthGoroutines.Load(); n != before {
		t.Fatalf("health goroutines after Shutdown got %d; want %d", n, before)
	}
}

func TestPassiveEjection(t *testing.T) {
	h := newHarness(t, `
upstreams:
  u:
    targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}, {url: "http://10.0.0.3:80"}]
    health: {passive: {consecutive_failures: 2, ejection_time: 10s}}
routes: [{upstream: u}]
`, map[string]fasthttp.RequestHandler{"10.0.0.2:80": named("b"), "10.0.0.3:80": named("c")})
	// Round robin rotates per CPU, so how often 10.0.0.1 comes up in a
	// few requests depends on the scheduler: send until it is ejected,
	// within a bound far above the two refusals that eject it.
	for i := 0; i < 100 && !h.gw.Upstreams()[0].Targets[0].Ejected; i++ {
		h.expectStatus("/x", 200) // 10.0.0.1 refuses; retried elsewhere
	}
	for i := 0; i < 12; i++ {
		h.expectStatus("/x", 200) // served by the two others while it is out
	}
	st := h.gw.Upstreams()[0]
	if !st.Targets[0].Ejected || st.Ejected != 1 || st.Targets[0].Ejections != 1 {
		t.Fatalf("after connect errors: %+v; want 10.0.0.1 ejected once", st)
	}
}

// waitFor polls cond until it holds; the 20s bound only keeps a broken
// build from hanging on a busy machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
