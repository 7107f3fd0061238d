package cache

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// until spins (yielding, no sleep) until cond holds, failing after 10s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

func TestCollapsing(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, `
routes:
  - {name: api, upstream: app, cache: {lock_timeout: 1m}}
`, func(ctx *fasthttp.RequestCtx) {
		<-release
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		ctx.WriteString("slow") //nolint:errcheck
	})
	const n = 100
	var wg sync.WaitGroup
	var hits, misses atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://gw.local/slow")
			if err := h.g.Client.DoTimeout(req, resp, time.Minute); err != nil || string(resp.Body()) != "slow" {
				t.Errorf("GET /slow: %v, body %q", err, resp.Body())
				return
			}
			switch string(resp.Header.Peek("X-Cache")) {
			case "HIT":
				hits.Add(1)
			case "MISS":
				misses.Add(1)
			}
		}()
	}
	until(t, "99 requests waiting and the leader upstream", func() bool { return h.b.Waiting() == n-1 && h.calls.Load() == 1 })
	close(release)
	wg.Wait()
	if h.calls.Load() != 1 || misses.Load() != 1 || hits.Load() != n-1 {
		t.Fatalf("got %d upstream requests, %d MISS, %d HIT; want 1, 1, %d", h.calls.Load(), misses.Load(), hits.Load(), n-1)
	}
}

func TestCollapsingUncacheable(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, plainRoute, func(ctx *fasthttp.RequestCtx) {
		if ctx.Request.Header.Peek("X-First") != nil {
			<-release
		}
		ctx.WriteString("not stored") //nolint:errcheck // no Cache-Control
	})
	done := make(chan string)
	go func() {
		_, xc, _ := h.get("/u", "X-First: 1")
		done <- xc
	}()
	until(t, "the leader upstream", func() bool { return h.calls.Load() == 1 })
	go func() {
		_, xc, _ := h.get("/u")
		done <- xc
	}()
	until(t, "a request waiting", func() bool { return h.b.Waiting() == 1 })
	close(release)
	a, b := <-done, <-done
	if a != "MISS" || b != "MISS" || h.calls.Load() != 2 {
		t.Fatalf("got %s, %s, %d upstream requests; want MISS, MISS, 2 (the waiter goes upstream itself)", a, b, h.calls.Load())
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int64
	h := newHarness(t, plainRoute, func(ctx *fasthttp.RequestCtx) {
		i := n.Add(1)
		if i == 2 {
			<-release // the refresh waits until the stale answers are in
		}
		ctx.Response.Header.Set("Cache-Control", "max-age=10, stale-while-revalidate=30")
		ctx.Response.Header.Set("X-N", string(rune('0'+i)))
		ctx.WriteString("v") //nolint:errcheck
	})
	h.expect("/a", "MISS", 1)
	h.clock.advance(15 * time.Second)
	for range 5 {
		resp := h.g.Do("GET", "http://gw.local/a")
		if xc, xn := string(resp.Header.Peek("X-Cache")), string(resp.Header.Peek("X-N")); xc != "STALE" || xn != "1" {
			t.Fatalf("stale: X-Cache %q, X-N %q; want STALE, 1", xc, xn)
		}
		fasthttp.ReleaseResponse(resp)
	}
	until(t, "the refresh upstream", func() bool { return h.calls.Load() == 2 })
	close(release)
	if key := <-h.refreshed; key != "GET gw.local/a" {
		t.Fatalf("refreshed key %q; want GET gw.local/a", key)
	}
	resp := h.g.Do("GET", "http://gw.local/a")
	defer fasthttp.ReleaseResponse(resp)
	if xc, xn := string(resp.Header.Peek("X-Cache")), string(resp.Header.Peek("X-N")); xc != "HIT" || xn != "2" || h.calls.Load() != 2 {
		t.Fatalf("after refresh: X-Cache %q, X-N %q, %d upstream requests; want HIT, 2, 2", xc, xn, h.calls.Load())
	}
	h.clock.advance(50 * time.Second) // past the window: a plain miss
	h.expect("/a", "MISS", 3)
}

func TestStaleIfError(t *testing.T) {
	var mode atomic.Int32 // 0 ok, 1 503, 2 connection dropped
	var n atomic.Int64
	h := newHarness(t, `
routes:
  - {name: api, upstream: app, cache: {stale_if_error: 1m}}
  - {name: mr, match: {path: "/mr"}, upstream: app, cache: {stale_if_error: 1m}}
`, func(ctx *fasthttp.RequestCtx) {
		switch mode.Load() {
		case 1:
			ctx.SetStatusCode(503)
			ctx.WriteString("down") //nolint:errcheck
			return
		case 2:
			ctx.Conn().Close()
			return
		}
		cc := "max-age=10"
		if string(ctx.Path()) == "/mr" {
			cc += ", must-revalidate"
		}
		ctx.Response.Header.Set("Cache-Control", cc)
		ctx.WriteString("v" + string(rune('0'+n.Add(1)))) //nolint:errcheck
	})
	f := func(uri, wantXCache string, wantStatus int, wantBody string) {
		t.Helper()
		code, xc, body := h.get(uri)
		if code != wantStatus || xc != wantXCache || (wantBody != "" && body != wantBody) {
			t.Fatalf("GET %s (mode %d): %d %s %q; want %d %s %q", uri, mode.Load(), code, xc, body, wantStatus, wantXCache, wantBody)
		}
	}
	f("/a", "MISS", 200, "v1")
	f("/mr", "MISS", 200, "v2")
	h.clock.advance(15 * time.Second)
	mode.Store(1)
	f("/a", "STALE", 200, "v1")
	f("/mr", "MISS", 503, "down") // must-revalidate: never stale
	mode.Store(2)
	f("/a", "STALE", 200, "v1")
	h.clock.advance(time.Minute) // past stale_if_error
	mode.Store(1)
	f("/a", "MISS", 503, "down")
	mode.Store(0)
	f("/a", "MISS", 200, "v3")
	f("/a", "HIT", 200, "v3")
}
