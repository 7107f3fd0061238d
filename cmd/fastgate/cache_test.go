package main

// Integration tests of the response cache (issue 12) against the built
// binaries: hits counted at the stub upstream, purging through the admin
// API, request collapsing.

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

const cacheConfig = `
upstreams:
  users: {targets: [{url: "{{users}}"}]}
routes:
  - {name: users, match: {path: "/users/{id}"}, upstream: users, cache: {ttl: 1h, key_header: true}}
`

// startCacheGateway starts fastgate with cacheConfig and an admin token.
func startCacheGateway(t *testing.T) (*gateway, *upstream) {
	t.Helper()
	u := startUpstream(t, "users")
	adminAddr := freePort(t)
	g := startGateway(t, `admin: {listen: "`+adminAddr+`", token: "cache-token"}`+cacheConfig, u)
	g.adminAddr = adminAddr
	return g, u
}

func TestCacheHitMiss(t *testing.T) {
	g, u := startCacheGateway(t)
	f := func(path, wantXCache string, wantGets int64, headers ...string) {
		t.Helper()
		r := g.get(t, path, headers...)
		if r.status != 200 || r.header.Get("X-Cache") != wantXCache || u.stats(t).Get != wantGets {
			t.Fatalf("GET %s: %d X-Cache %q, upstream GETs %d; want 200 %q %d", path, r.status, r.header.Get("X-Cache"), u.stats(t).Get, wantXCache, wantGets)
		}
		if wantXCache == "HIT" && r.header.Get("Age") == "" {
			t.Fatalf("GET %s: a HIT without Age", path)
		}
	}
	f("/users/1", "MISS", 1)
	f("/users/1", "HIT", 1)
	f("/users/1", "HIT", 1)
	f("/users/2", "MISS", 2)
	f("/users/1", "BYPASS", 3, "Authorization: Bearer x")
	f("/users/1?a=1", "MISS", 4)
	if r := g.get(t, "/users/1"); r.header.Get("X-Cache-Key") != "GET 127.0.0.1/users/1" {
		t.Fatalf("X-Cache-Key got %q; want %q", r.header.Get("X-Cache-Key"), "GET 127.0.0.1/users/1")
	}
	metrics := string(g.admin(t, "GET", "/metrics", "").body)
	for _, want := range []string{`fastgate_cache_requests_total{route="users",result="hit"} 3`, `fastgate_cache_requests_total{route="users",result="miss"} 3`, "fastgate_cache_entries "} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
}

func TestCachePurge(t *testing.T) {
	g, u := startCacheGateway(t)
	for _, p := range []string{"/users/1", "/users/2", "/users/3"} {
		g.get(t, p)
	}
	purge := func(body, token string, wantStatus int, wantBody string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+g.adminAddr+"/cache/purge", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatalf("POST /cache/purge: %s", err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		if resp.StatusCode != wantStatus || !strings.Contains(b.String(), wantBody) {
			t.Fatalf("POST /cache/purge %s: %d %s; want %d containing %s", body, resp.StatusCode, b.String(), wantStatus, wantBody)
		}
	}
	purge(`{"key": "GET 127.0.0.1/users/1"}`, "", http.StatusUnauthorized, "")
	purge(`{"key": "GET 127.0.0.1/users/1"}`, "cache-token", 200, `"purged": 1`)
	if r := g.get(t, "/users/1"); r.header.Get("X-Cache") != "MISS" || u.stats(t).Get != 4 {
		t.Fatalf("after purge: X-Cache %q, upstream GETs %d; want MISS, 4", r.header.Get("X-Cache"), u.stats(t).Get)
	}
	purge(`{"prefix": "GET 127.0.0.1/users/"}`, "cache-token", 200, `"purged": 3`)
	if r := g.get(t, "/users/2"); r.header.Get("X-Cache") != "MISS" {
		t.Fatalf("after prefix purge: X-Cache %q; want MISS", r.header.Get("X-Cache"))
	}
	purge(`{}`, "cache-token", http.StatusBadRequest, "prefix")
}

// TestCacheCollapsing sends concurrent requests for one key to a slow
// upstream: it sees one. Whatever the timing, a request that arrives after
// the first response is stored is a hit, so the count is exact.
func TestCacheCollapsing(t *testing.T) {
	g, u := startCacheGateway(t)
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := g.try("GET", "/users/7", "", "X-Stub-Latency: 300ms")
			if err != nil || r.status != 200 {
				t.Errorf("GET /users/7: %v %v", err, r)
			}
		}()
	}
	wg.Wait()
	if got := u.stats(t).Get; got != 1 {
		t.Fatalf("upstream GETs got %d; want 1 for %d concurrent requests", got, n)
	}
}
