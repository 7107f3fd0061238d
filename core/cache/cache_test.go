package cache

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// scripted is an upstream answering as the request's X-Up header says:
// "status;Name: value;Name: value" (status empty: 200), with the body
// "<path> #<n>", n counting its requests.
func scripted() fasthttp.RequestHandler {
	var mu sync.Mutex
	n := 0
	return func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		n++
		i := n
		mu.Unlock()
		parts := strings.Split(string(ctx.Request.Header.Peek("X-Up")), ";")
		if code, err := strconv.Atoi(parts[0]); err == nil {
			ctx.SetStatusCode(code)
		}
		for _, hv := range parts[1:] {
			k, v, _ := strings.Cut(hv, ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if secs, ok := strings.CutPrefix(v, "now+"); ok { // a date from now (the upstream's Date is now)
				n, _ := strconv.Atoi(secs)
				v = string(fasthttp.AppendHTTPDate(nil, time.Now().Add(time.Duration(n)*time.Second)))
			}
			ctx.Response.Header.Add(k, v)
		}
		fmt.Fprintf(ctx, "%s #%d", ctx.Path(), i)
	}
}

const plainRoute = `
routes:
  - {name: api, upstream: app, cache: {}}
`

func TestHitAfterMiss(t *testing.T) {
	h := newHarness(t, plainRoute, scripted())
	up := "X-Up: ;Cache-Control: max-age=60;Age: 5;ETag: \"v1\""
	h.expect("/a", "MISS", 1, up)
	resp := h.g.Do("GET", "http://gw.local/a", up)
	defer fasthttp.ReleaseResponse(resp)
	if got := string(resp.Header.Peek("X-Cache")); got != "HIT" {
		t.Fatalf("X-Cache got %q; want HIT", got)
	}
	if got := string(resp.Header.Peek("Age")); got != "5" {
		t.Fatalf("Age got %q; want 5 (the upstream's)", got)
	}
	if got := string(resp.Body()); got != "/a #1" {
		t.Fatalf("body got %q; want the first response's", got)
	}
	if got := string(resp.Header.Peek("ETag")); got != `"v1"` {
		t.Fatalf("ETag got %q; want the stored one", got)
	}
	if got := resp.Header.Peek("X-Request-ID"); len(got) == 0 {
		t.Fatalf("X-Request-ID missing on a hit")
	}
	h.clock.advance(10 * time.Second)
	resp2 := h.g.Do("GET", "http://gw.local/a")
	defer fasthttp.ReleaseResponse(resp2)
	if got := string(resp2.Header.Peek("Age")); got != "15" {
		t.Fatalf("Age after 10s got %q; want 15", got)
	}
	if h.calls.Load() != 1 {
		t.Fatalf("upstream requests got %d; want 1", h.calls.Load())
	}
}

func TestFreshness(t *testing.T) {
	h := newHarness(t, `
routes:
  - {name: ttl, match: {path: "/ttl/{p:*}"}, upstream: app, cache: {ttl: 1m}}
  - {name: api, upstream: app, cache: {}}
`, scripted())
	path := 0
	// f: a response with headers up, a second request after wait: its
	// X-Cache.
	f := func(up string, wait time.Duration, want string) {
		t.Helper()
		path++
		uri := "/p" + strconv.Itoa(path)
		if strings.HasPrefix(up, "ttl ") {
			uri, up = "/ttl"+uri, up[4:]
		}
		before := h.calls.Load()
		h.expect(uri, "MISS", before+1, "X-Up: "+up)
		h.clock.advance(wait)
		calls := before + 1
		if want == "MISS" {
			calls++
		}
		h.expect(uri, want, calls, "X-Up: "+up)
	}
	f(";Cache-Control: max-age=10", 5*time.Second, "HIT")
	f(";Cache-Control: max-age=10", 11*time.Second, "MISS")
	f(";Cache-Control: max-age=10;Age: 8", 3*time.Second, "MISS")
	f(";Cache-Control: max-age=100, s-maxage=10", 11*time.Second, "MISS")
	f(";Cache-Control: max-age=5, s-maxage=100", 11*time.Second, "HIT")
	f(";Expires: now+10", 5*time.Second, "HIT")
	f(";Expires: now+10", 12*time.Second, "MISS")
	f(";Expires: 0", 0, "MISS")
	f(";Cache-Control: max-age=100;Expires: 0", 0, "HIT")
	f("", 0, "MISS") // no explicit freshness
	f(";Cache-Control: max-age=60, no-store", 0, "MISS")
	f(";Cache-Control: max-age=60, private", 0, "MISS")
	f(";Cache-Control: max-age=60, no-cache", 0, "MISS")
	f(";Cache-Control: max-age=60;Set-Cookie: s=1", 0, "MISS")
	f(";Cache-Control: max-age=60;Vary: *", 0, "MISS")
	f("500;Cache-Control: max-age=60", 0, "MISS")
	f("404;Cache-Control: max-age=60", 0, "HIT")
	f("ttl ", 59*time.Second, "HIT")
	f("ttl ;Cache-Control: max-age=1", 30*time.Second, "HIT")
	f("ttl ", 61*time.Second, "MISS")
	f("ttl ;Cache-Control: no-store", 0, "MISS")
}

func TestBypass(t *testing.T) {
	h := newHarness(t, `
routes:
  - {name: shared, match: {path: "/shared/{p:*}"}, upstream: app, cache: {}}
  - {name: mine, match: {path: "/mine/{p:*}"}, upstream: app, cache: {per_consumer: true}}
  - {name: get, match: {path: "/get/{p:*}"}, upstream: app, cache: {methods: [GET]}}
`, nil)
	h.expect("/shared/a", "MISS", 1)
	h.expect("/shared/a", "HIT", 1)
	h.expect("/shared/a", "BYPASS", 2, "Authorization: Bearer x")
	h.expect("/shared/a", "BYPASS", 3, "Cookie: s=1")
	h.expect("/shared/a", "BYPASS", 4, "X-Test-Consumer: alice")
	if _, xc, _ := h.do("POST", "/shared/a"); xc != "BYPASS" {
		t.Fatalf("POST: X-Cache %q; want BYPASS", xc)
	}
	if _, xc, _ := h.do("HEAD", "/get/a"); xc != "BYPASS" {
		t.Fatalf("HEAD with methods [GET]: X-Cache %q; want BYPASS", xc)
	}
	n := h.calls.Load()
	h.expect("/mine/a", "MISS", n+1, "X-Test-Consumer: alice")
	h.expect("/mine/a", "HIT", n+1, "X-Test-Consumer: alice", "Authorization: Bearer x")
	h.expect("/mine/a", "MISS", n+2, "X-Test-Consumer: bob")
	h.expect("/mine/a", "MISS", n+3) // no consumer: its own entry
	h.expect("/mine/a", "HIT", n+3)
	h.expect("/mine/a", "BYPASS", n+4, "Cookie: s=1")
}

func TestVary(t *testing.T) {
	h := newHarness(t, `
routes:
  - {name: resp, match: {path: "/r/{p:*}"}, upstream: app, cache: {}}
  - {name: conf, match: {path: "/c/{p:*}"}, upstream: app, cache: {vary: [X-Tenant]}}
`, scripted())
	up := "X-Up: ;Cache-Control: max-age=60;Vary: Accept-Language, accept-encoding"
	h.expect("/r/a", "MISS", 1, up, "Accept-Language: en")
	h.expect("/r/a", "HIT", 1, up, "Accept-Language: en")
	h.expect("/r/a", "MISS", 2, up, "Accept-Language: fr")
	h.expect("/r/a", "HIT", 2, up, "Accept-Language: fr")
	h.expect("/r/a", "HIT", 2, up, "Accept-Language: en")
	h.expect("/r/a", "MISS", 3, up, "Accept-Language: en", "Accept-Encoding: gzip")
	h.expect("/r/a", "MISS", 4, up)

	up = "X-Up: ;Cache-Control: max-age=60"
	h.expect("/c/a", "MISS", 5, up, "X-Tenant: a")
	h.expect("/c/a", "HIT", 5, up, "X-Tenant: a")
	h.expect("/c/a", "MISS", 6, up, "X-Tenant: b")
	h.expect("/c/a", "MISS", 7, up)
	h.expect("/c/a", "HIT", 7, up)
}

func TestQueryModes(t *testing.T) {
	h := newHarness(t, `
routes:
  - {name: keep, match: {path: "/keep"}, upstream: app, cache: {key_header: true}}
  - {name: sort, match: {path: "/sort"}, upstream: app, cache: {query: sort, key_header: true}}
  - {name: ignore, match: {path: "/ignore"}, upstream: app, cache: {query: ignore, key_header: true}}
`, nil)
	f := func(uri, wantKey, wantXCache string, wantCalls int64) {
		t.Helper()
		resp := h.g.Do("GET", "http://GW.Local:8080"+uri)
		defer fasthttp.ReleaseResponse(resp)
		key, xc := string(resp.Header.Peek("X-Cache-Key")), string(resp.Header.Peek("X-Cache"))
		if key != wantKey || xc != wantXCache || h.calls.Load() != wantCalls {
			t.Fatalf("GET %s: key %q, X-Cache %s, %d upstream requests; want %q, %s, %d", uri, key, xc, h.calls.Load(), wantKey, wantXCache, wantCalls)
		}
	}
	f("/keep?b=2&a=1", "GET gw.local/keep?b=2&a=1", "MISS", 1)
	f("/keep?a=1&b=2", "GET gw.local/keep?a=1&b=2", "MISS", 2)
	f("/keep?b=2&a=1", "GET gw.local/keep?b=2&a=1", "HIT", 2)
	f("/sort?b=2&a=1&&c", "GET gw.local/sort?a=1&b=2&c", "MISS", 3)
	f("/sort?c&a=1&b=2", "GET gw.local/sort?a=1&b=2&c", "HIT", 3)
	f("/ignore?x=1", "GET gw.local/ignore", "MISS", 4)
	f("/ignore?x=2", "GET gw.local/ignore", "HIT", 4)
	f("/keep", "GET gw.local/keep", "MISS", 5)
	f("/keep?", "GET gw.local/keep", "HIT", 5)
	f("/keep?q=a%20b", "GET gw.local/keep?q=a%20b", "MISS", 6)
}

func TestConditional(t *testing.T) {
	lm := "Tue, 14 Nov 2023 22:13:20 GMT"
	h := newHarness(t, plainRoute, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		ctx.Response.Header.Set("ETag", `W/"v1"`)
		ctx.Response.Header.Set("Last-Modified", lm)
		ctx.Response.Header.Set("X-Other", "x")
		ctx.WriteString("body") //nolint:errcheck
	})
	h.expect("/a", "MISS", 1)
	f := func(header string, want int) {
		t.Helper()
		resp := h.g.Do("GET", "http://gw.local/a", header)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != want || string(resp.Header.Peek("X-Cache")) != "HIT" {
			t.Fatalf("%s: status %d X-Cache %q; want %d HIT", header, resp.StatusCode(), resp.Header.Peek("X-Cache"), want)
		}
		if want == 304 {
			if len(resp.Body()) != 0 || string(resp.Header.Peek("ETag")) != `W/"v1"` || string(resp.Header.Peek("Last-Modified")) != lm ||
				string(resp.Header.Peek("Cache-Control")) != "max-age=60" || len(resp.Header.Peek("Age")) == 0 || len(resp.Header.Peek("X-Other")) != 0 {
				t.Fatalf("%s: 304 with body %q, headers:\n%s", header, resp.Body(), resp.Header.String())
			}
		} else if string(resp.Body()) != "body" {
			t.Fatalf("%s: body %q; want the stored one", header, resp.Body())
		}
	}
	f(`If-None-Match: "v1"`, 304)
	f(`If-None-Match: W/"v1"`, 304)
	f(`If-None-Match: "v0", W/"v1"`, 304)
	f(`If-None-Match: *`, 304)
	f(`If-None-Match: "v2"`, 200)
	f(`If-Modified-Since: `+lm, 304)
	f(`If-Modified-Since: Wed, 15 Nov 2023 00:00:00 GMT`, 304)
	f(`If-Modified-Since: Mon, 13 Nov 2023 00:00:00 GMT`, 200)
	f(`If-Modified-Since: yesterday`, 200)
	if h.calls.Load() != 1 {
		t.Fatalf("upstream requests got %d; want 1", h.calls.Load())
	}
}

func TestHeadFromGet(t *testing.T) {
	h := newHarness(t, plainRoute, nil)
	if _, xc, _ := h.do("HEAD", "/a"); xc != "MISS" || h.calls.Load() != 1 {
		t.Fatalf("HEAD miss: X-Cache %q, %d upstream requests; want MISS, 1", xc, h.calls.Load())
	}
	h.expect("/a", "MISS", 2) // the HEAD response was not stored
	resp := h.g.Do("HEAD", "http://gw.local/a")
	defer fasthttp.ReleaseResponse(resp)
	if xc := string(resp.Header.Peek("X-Cache")); xc != "HIT" || len(resp.Body()) != 0 || resp.Header.ContentLength() != 2 || h.calls.Load() != 2 {
		t.Fatalf("HEAD hit: X-Cache %q, body %q, Content-Length %d, %d upstream requests; want HIT, none, 2, 2",
			xc, resp.Body(), resp.Header.ContentLength(), h.calls.Load())
	}
}

func TestMaxObjectSize(t *testing.T) {
	h := newHarness(t, `
routes:
  - {name: api, upstream: app, cache: {max_object_size: 100KiB}}
`, func(ctx *fasthttp.RequestCtx) {
		n, _ := strconv.Atoi(string(ctx.QueryArgs().Peek("n")))
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		ctx.Write(make([]byte, n)) //nolint:errcheck
	})
	h.expect("/a?n=1000", "MISS", 1)
	h.expect("/a?n=1000", "HIT", 1)
	h.expect("/a?n=90000", "MISS", 2) // over 64KiB: stored in chunks
	_, xc, body := h.get("/a?n=90000")
	if xc != "HIT" || len(body) != 90000 || h.calls.Load() != 2 {
		t.Fatalf("big entry: X-Cache %q, %d bytes, %d upstream requests; want HIT, 90000, 2", xc, len(body), h.calls.Load())
	}
	h.expect("/a?n=200000", "MISS", 3)
	h.expect("/a?n=200000", "MISS", 4)
}

func TestPurge(t *testing.T) {
	h := newHarness(t, plainRoute, scripted())
	up := "X-Up: ;Cache-Control: max-age=60;Vary: Accept-Language"
	for _, p := range []string{"/p/1", "/p/2", "/p/2?x=1", "/q/1"} {
		h.get(p, up)
	}
	h.get("/p/1", up, "Accept-Language: fr")
	f := func(key string, prefix bool, want int) {
		t.Helper()
		if n, err := h.b.Purge(key, prefix); n != want || err != nil {
			t.Fatalf("Purge(%q, %v) got %d, %v; want %d", key, prefix, n, err, want)
		}
	}
	f("GET gw.local/p/1", false, 2) // both Accept-Language variants
	h.expect("/p/1", "MISS", 6, up)
	h.expect("/p/2", "HIT", 6, up)
	f("GET gw.local/p/", true, 3) // /p/1 again, /p/2, /p/2?x=1
	f("GET gw.local/p/", true, 0)
	h.expect("/p/2", "MISS", 7, up)
	h.expect("/q/1", "HIT", 7, up)
	f("GET gw.local/q", false, 0)
	if _, err := h.b.Purge("", true); err != ErrEmptyKey {
		t.Fatalf("Purge(\"\") got %v; want ErrEmptyKey", err)
	}
}

func TestStaticRoute(t *testing.T) {
	h := newHarness(t, `
routes:
  - {name: s, static: {status: 200, body: "hello"}, cache: {ttl: 1m}}
`, nil)
	if _, xc, body := h.get("/x"); xc != "MISS" || body != "hello" {
		t.Fatalf("first: %q %q; want MISS hello", xc, body)
	}
	if _, xc, body := h.get("/x"); xc != "HIT" || body != "hello" {
		t.Fatalf("second: %q %q; want HIT hello", xc, body)
	}
}
