package core

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

const targetsBase = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
  found:
    discovery: {type: file, path: /nonexistent/targets.yaml}
routes:
  - {name: users, match: {path: "/users/{id}"}, upstream: users}
  - {name: found, match: {path: "/found"}, upstream: found}
`

func targetsHandlers() map[string]fasthttp.RequestHandler {
	return map[string]fasthttp.RequestHandler{
		"10.0.0.1:80": named("a"), "10.0.0.2:80": named("b"), "10.0.0.3:80": named("c"),
	}
}

// TestSetTargets checks that a runtime target list replaces the config's,
// keeps the state of the addresses that stay, is validated, and that a
// reload drops admin lists and keeps discovery ones.
func TestSetTargets(t *testing.T) {
	h := newHarness(t, targetsBase, targetsHandlers())
	h.expectStatus("/users/1", 200)
	// A discovery upstream with no answer yet has no target: 503.
	h.expectStatus("/found", 503)
	kept := h.gw.Snapshot().upstreams["users"].targets[0]

	err := h.gw.SetTargets("users", []config.Target{{URL: "http://10.0.0.1:80"}, {URL: "http://10.0.0.2:80", Weight: 3}}, SourceAdmin)
	if err != nil {
		t.Fatalf("SetTargets: %s", err)
	}
	up := h.gw.Snapshot().upstreams["users"]
	if len(up.targets) != 2 || up.targets[0] != kept || up.targets[1].lb.Weight() != 3 {
		t.Fatalf("after SetTargets: %d targets, first kept %v; want 2 with 10.0.0.1 kept and weight 3", len(up.targets), up.targets[0] == kept)
	}
	if list, src, _ := h.gw.Targets("users"); len(list) != 2 || src != SourceAdmin {
		t.Fatalf("Targets: %d from %q; want 2 from admin", len(list), src)
	}
	seen := map[string]bool{}
	for range 8 {
		seen[string(h.expectStatus("/users/1", 200))] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("answers %v; want both targets", seen)
	}

	// Errors change nothing.
	before := h.gw.Snapshot()
	for _, tc := range []struct {
		name, upstream, source string
		targets                []config.Target
		want                   string
	}{
		{"unknown upstream", "nope", SourceAdmin, nil, `core: no such upstream "nope"`},
		{"discovery-managed", "found", SourceAdmin, nil, "gets its targets from file discovery"},
		{"bad URL", "users", SourceAdmin, []config.Target{{URL: "ftp://x"}}, `targets[0].url: scheme "ftp" is not supported`},
		{"duplicate", "users", SourceAdmin, []config.Target{{URL: "http://10.0.0.1"}, {URL: "http://10.0.0.1:80"}}, "targets[1].url: 10.0.0.1:80 is the address of targets[0] too"},
	} {
		err := h.gw.SetTargets(tc.upstream, tc.targets, tc.source)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
	if h.gw.Snapshot() != before {
		t.Fatal("a rejected SetTargets replaced the snapshot")
	}

	// Discovery fills the discovery upstream.
	if err := h.gw.SetTargets("found", []config.Target{{URL: "http://10.0.0.3:80"}}, "file"); err != nil {
		t.Fatalf("SetTargets from discovery: %s", err)
	}
	if got := string(h.expectStatus("/found", 200)); got != "c" {
		t.Fatalf("/found answered %q; want c", got)
	}
	st := upstreamStatus(h.gw, "found")
	if st.Source != "file" || len(st.Targets) != 1 {
		t.Fatalf("status of found: source %q, %d targets; want file, 1", st.Source, len(st.Targets))
	}

	// A reload drops the admin list and keeps discovery's.
	mustApply(t, h, targetsBase+"  - {name: extra, match: {path: /extra}, upstream: users}\n")
	if n := len(h.gw.Snapshot().upstreams["users"].targets); n != 1 {
		t.Fatalf("users after a reload: %d targets; want the config's 1", n)
	}
	if got := string(h.expectStatus("/found", 200)); got != "c" {
		t.Fatalf("/found after a reload answered %q; want c (discovery's list kept)", got)
	}
	// Removing the discovery block drops its list.
	mustApply(t, h, strings.Replace(targetsBase, "discovery: {type: file, path: /nonexistent/targets.yaml}", `targets: [{url: "http://10.0.0.2:80"}]`, 1))
	if got := string(h.expectStatus("/found", 200)); got != "b" {
		t.Fatalf("/found without discovery answered %q; want b", got)
	}
}

// TestSetTargetsDrain checks that a removed target gets no new request,
// that the request running on it finishes, and that WaitDrained returns
// only then, listing it as draining meanwhile.
func TestSetTargetsDrain(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	hs := targetsHandlers()
	hs["10.0.0.1:80"] = func(ctx *fasthttp.RequestCtx) { entered <- struct{}{}; <-release; ctx.SetBodyString("slow") }
	h := newHarness(t, targetsBase, hs)
	done := make(chan int)
	go func() {
		resp := h.get("http://gw.local/users/1")
		done <- resp.StatusCode()
		fasthttp.ReleaseResponse(resp)
	}()
	<-entered
	if err := h.gw.SetTargets("users", []config.Target{{URL: "http://10.0.0.2:80"}}, SourceAdmin); err != nil {
		t.Fatal(err)
	}
	st := upstreamStatus(h.gw, "users")
	if len(st.Draining) != 1 || st.Draining[0].Addr != "10.0.0.1:80" || st.Draining[0].InFlight != 1 {
		t.Fatalf("draining %+v; want 10.0.0.1:80 with 1 in flight", st.Draining)
	}
	// New requests go to the new list only.
	for range 4 {
		if got := string(h.expectStatus("/users/1", 200)); got != "b" {
			t.Fatalf("a request after the change answered %q; want b", got)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := h.gw.WaitDrained(ctx, "users", []string{"10.0.0.1:80"}); n != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitDrained while the request runs: %d, %v; want 1 and context.Canceled", n, err)
	}
	waited := make(chan error)
	go func() {
		_, err := h.gw.WaitDrained(context.Background(), "users", []string{"10.0.0.1:80"})
		waited <- err
	}()
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("the request on the removed target: %d; want 200", code)
	}
	if err := <-waited; err != nil {
		t.Fatalf("WaitDrained: %s", err)
	}
	if st := upstreamStatus(h.gw, "users"); len(st.Draining) != 0 {
		t.Fatalf("draining after the drain: %+v; want none", st.Draining)
	}
}

func upstreamStatus(g *Gateway, name string) UpstreamStatus {
	for _, u := range g.Upstreams() {
		if u.Name == name {
			return u
		}
	}
	return UpstreamStatus{}
}
