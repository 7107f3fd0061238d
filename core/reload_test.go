package core

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

const reloadBase = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80", weight: 2}]}
routes:
  - {name: users, match: {path: "/users/{id}"}, upstream: users}
`

// TestApplyKeepsTargets checks that a reload keeps the pools and balancing
// state of unchanged targets, rebuilds only what changed, and keeps metric
// series of routes that stay.
func TestApplyKeepsTargets(t *testing.T) {
	h := newHarness(t, reloadBase, map[string]fasthttp.RequestHandler{
		"10.0.0.1:80": named("a"), "10.0.0.2:80": named("b"), "10.0.0.3:80": named("c"),
	})
	h.expectStatus("/users/1", 200)
	old := h.gw.Snapshot().upstreams["users"]

	// A route change: both targets are the same objects.
	mustApply(t, h, reloadBase+"  - {name: extra, match: {path: /extra}, upstream: users}\n")
	cur := h.gw.Snapshot().upstreams["users"]
	if cur.targets[0] != old.targets[0] || cur.targets[1] != old.targets[1] {
		t.Fatal("targets rebuilt by a reload that did not change them")
	}

	// A weight change keeps the target; a pool change keeps the balancing
	// state but builds a new pool; a new address is a new target.
	mustApply(t, h, `
upstreams:
  users:
    targets: [{url: "http://10.0.0.1:80", weight: 5}, {url: "http://10.0.0.3:80"}]
    pool: {max_conns: 7}
routes:
  - {name: users, match: {path: "/users/{id}"}, upstream: users}
`)
	next := h.gw.Snapshot().upstreams["users"]
	if next.targets[0] == old.targets[0] || next.targets[0].lb != old.targets[0].lb {
		t.Fatal("pool change: want a new target with the old balancing state")
	}
	if next.targets[0].hc.MaxConns != 7 || next.targets[0].lb.Weight() != 5 {
		t.Fatalf("pool change: max_conns %d weight %d; want 7 and 5", next.targets[0].hc.MaxConns, next.targets[0].lb.Weight())
	}
	if next.targets[1].addr != "10.0.0.3:80" || next.targets[1].lb == old.targets[1].lb {
		t.Fatal("a new address must be a new target")
	}
	h.gw.retiring.Wait()
	if n := len(h.gw.live); n != 1 {
		t.Fatalf("live snapshots after the reloads drained: %d; want 1", n)
	}
	names := strings.Join(h.gw.metrics.set.ListMetricNames(), "\n")
	if strings.Contains(names, `route="extra"`) {
		t.Fatal("series of the removed route extra still registered")
	}
	if strings.Contains(names, `target="10.0.0.2:80"`) {
		t.Fatal("series of the removed target 10.0.0.2:80 still registered")
	}
	if !strings.Contains(names, `fastgate_requests_total{route="users",code="200",method="GET"}`) {
		t.Fatal("series of the kept route users lost")
	}
}

// TestApplyDrainsOldSnapshot checks that a request in flight finishes on
// the snapshot it started on, which retires only afterwards.
func TestApplyDrainsOldSnapshot(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	slow := func(ctx *fasthttp.RequestCtx) { entered <- struct{}{}; <-release; ctx.SetBodyString("slow") }
	h := newHarness(t, reloadBase, map[string]fasthttp.RequestHandler{"10.0.0.1:80": slow, "10.0.0.2:80": slow})
	done := make(chan int)
	go func() {
		resp := h.get("http://gw.local/users/1")
		done <- resp.StatusCode()
		fasthttp.ReleaseResponse(resp)
	}()
	old := h.gw.Snapshot()
	<-entered
	if n := old.InFlight(); n != 1 {
		t.Fatalf("in flight on the old snapshot: %d; want 1", n)
	}
	mustApply(t, h, reloadBase+"  - {name: extra, match: {path: /extra}, upstream: users}\n")
	h.gw.mu.Lock()
	live := len(h.gw.live)
	h.gw.mu.Unlock()
	if live != 2 {
		t.Fatalf("live snapshots while a request runs on the old one: %d; want 2", live)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("in-flight request across the reload: status %d; want 200", code)
	}
	h.gw.retiring.Wait()
	if len(h.gw.live) != 1 {
		t.Fatalf("live snapshots after the drain: %d; want 1", len(h.gw.live))
	}
}

// TestApplyRejects checks that a config that fails to compile changes nothing.
func TestApplyRejects(t *testing.T) {
	h := newHarness(t, reloadBase, map[string]fasthttp.RequestHandler{"10.0.0.1:80": named("a"), "10.0.0.2:80": named("b")})
	before := h.gw.Snapshot()
	c := mustConfig(t, reloadBase)
	c.TLS.Certs = append(c.TLS.Certs, config.Cert{Cert: "/nonexistent.pem", Key: "/nonexistent.key"})
	err := h.gw.Apply(c)
	if err == nil || !strings.HasPrefix(err.Error(), "tls.certs[0]: ") {
		t.Fatalf("Apply with a missing certificate: got %v; want a tls.certs[0] error", err)
	}
	if h.gw.Snapshot() != before {
		t.Fatal("a rejected config replaced the snapshot")
	}
	h.expectStatus("/users/1", 200)
}

func mustApply(t *testing.T, h *harness, cfg string) {
	t.Helper()
	if err := h.gw.Apply(mustConfig(t, cfg)); err != nil {
		t.Fatalf("Apply: %s", err)
	}
}
