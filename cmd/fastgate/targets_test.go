package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"fastgate/core"
)

const targetsToken = "t0ken-for-targets"

// adminBody sends method path with body to g's admin API with the token.
func (g *gateway) adminBody(t *testing.T, method, path, body string) *response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+g.adminAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+targetsToken)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %s; stderr:\n%s", method, path, err, g.stderr.String())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// upstreamState returns the upstream's entry of GET /upstreams.
func (g *gateway) upstreamState(t *testing.T, name string) core.UpstreamStatus {
	t.Helper()
	var all []core.UpstreamStatus
	if err := json.Unmarshal(g.admin(t, "GET", "/upstreams", targetsToken).body, &all); err != nil {
		t.Fatalf("GET /upstreams: %s", err)
	}
	for _, u := range all {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("GET /upstreams has no %s", name)
	return core.UpstreamStatus{}
}

// loadRun sends GETs from workers until stop closes or each has sent max,
// counting the answers by the stub that gave them.
type loadRun struct {
	stop            chan struct{}
	wg              sync.WaitGroup
	sent, failed    atomic.Int64
	firstErr        atomic.Value
	mu              sync.Mutex
	byStub          map[string]int
	path, keyHeader string
}

func startLoad(g *gateway, workers, max int, path string) *loadRun {
	l := &loadRun{stop: make(chan struct{}), byStub: map[string]int{}, path: path}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := newClient()
			defer client.CloseIdleConnections()
			lg := &gateway{addr: g.addr, client: client}
			for i := range max {
				select {
				case <-l.stop:
					return
				default:
				}
				r, err := lg.try("GET", l.path, "", fmt.Sprintf("X-Key: w%d-%d", w, i))
				l.sent.Add(1)
				if err == nil && r.status != 200 {
					err = fmt.Errorf("GET %s: status %d: %s", l.path, r.status, r.body)
				}
				if err != nil {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				l.mu.Lock()
				l.byStub[r.header.Get("X-Stub-Name")]++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// served returns how many answers came from the stub name.
func (l *loadRun) served(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byStub[name]
}

// finish stops the load and fails the test if a request failed.
func (l *loadRun) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, l.sent.Load(), l.firstErr.Load())
	}
}

// TestAdminTargets changes an upstream's targets through the admin API
// under load: a target added serves, one removed with ?drain gets no new
// request while the request running on it completes, and not a request
// fails. A reload of the file restores the config's list.
func TestAdminTargets(t *testing.T) {
	a, b, c := startUpstream(t, "a"), startUpstream(t, "b"), startUpstream(t, "c")
	adminAddr := freePort(t)
	g := startGateway(t, `
admin: {listen: "`+adminAddr+`", token: "`+targetsToken+`"}
upstreams:
  users:
    balancer: consistent_hash
    hash: {key: "header:X-Key"}
    targets: [{url: "{{a}}"}, {url: "{{b}}"}]
    retries: {attempts: 1}
routes:
  - {name: users, match: {path: "/users"}, upstream: users}
  # The slow request of the drain has a route of its own, so its in-flight
  # count tells it apart from the load's requests on the same target.
  - {name: slow, match: {path: "/slow"}, upstream: users}
`, a, b)
	g.adminAddr = adminAddr

	// Refusals first: nothing changes.
	for _, tc := range []struct {
		method, path, body string
		want               int
		contains           string
	}{
		{"PUT", "/upstreams/nope/targets", `[{"url": "` + c.url() + `"}]`, 404, `no upstream \"nope\"`},
		{"PUT", "/upstreams/users/targets", `{"targets": [{"url": "ftp://x"}]}`, 400, `targets[0].url: scheme \"ftp\" is not supported`},
		{"PUT", "/upstreams/users/targets", `{"targets": [{"url": "` + c.url() + `", "wieght": 2}]}`, 400, "want a JSON list of targets"},
		{"DELETE", "/upstreams/users/targets/127.0.0.1:1", "", 404, "127.0.0.1:1 is not a target of upstream"},
		{"PUT", "/upstreams/users/targets?drain=forever", `[]`, 400, "drain=\\\"forever\\\""},
	} {
		r := g.adminBody(t, tc.method, tc.path, tc.body)
		if r.status != tc.want || !strings.Contains(string(r.body), tc.contains) {
			t.Errorf("%s %s %s: %d %s; want %d containing %s", tc.method, tc.path, tc.body, r.status, r.body, tc.want, tc.contains)
		}
	}
	if r := g.admin(t, "PUT", "/upstreams/users/targets", ""); r.status != 401 {
		t.Fatalf("PUT without the token: %d; want 401", r.status)
	}

	load := startLoad(g, 4, 20000, "/users")
	waitFor(t, "load reaching a and b", 10*time.Second, func() bool { return load.served("a") > 0 && load.served("b") > 0 })

	// Add c with POST: it starts serving.
	r := g.adminBody(t, "POST", "/upstreams/users/targets", `{"url": "`+c.url()+`", "weight": 2}`)
	if r.status != 200 || !strings.Contains(string(r.body), `"added": [`) {
		t.Fatalf("POST a target: %d %s", r.status, r.body)
	}
	waitFor(t, "load reaching c", 10*time.Second, func() bool { return load.served("c") > 0 })
	if st := g.upstreamState(t, "users"); st.Source != core.SourceAdmin || len(st.Targets) != 3 {
		t.Fatalf("GET /upstreams: source %q with %d targets; want admin with 3", st.Source, len(st.Targets))
	}

	// A slow request on a, then remove a with drain: the call returns once
	// that request is done, which completes with 200.
	key := ""
	for i := 0; key == "" && i < 200; i++ {
		k := fmt.Sprintf("probe-%d", i)
		if g.get(t, "/users", "X-Key: "+k).header.Get("X-Stub-Name") == "a" {
			key = k
		}
	}
	if key == "" {
		t.Fatal("no key of 200 maps to target a")
	}
	slow := make(chan *response)
	go func() {
		r, err := g.try("GET", "/slow", "", "X-Key: "+key, "X-Stub-Latency: 1s")
		if err != nil {
			r = &response{status: -1, body: []byte(err.Error())}
		}
		slow <- r
	}()
	slowInFlight := func() bool {
		var st struct {
			Routes []struct {
				Name     string `json:"name"`
				InFlight int64  `json:"in_flight"`
			} `json:"routes"`
		}
		r := g.admin(t, "GET", "/stats", targetsToken)
		if err := json.Unmarshal(r.body, &st); err != nil {
			t.Fatalf("GET /stats: %s: %s", err, r.body)
		}
		for _, rt := range st.Routes {
			if rt.Name == "slow" && rt.InFlight > 0 {
				return true
			}
		}
		return false
	}
	waitFor(t, "the slow request in flight", 10*time.Second, slowInFlight)
	removeDone := make(chan *response)
	go func() { removeDone <- g.adminBody(t, "DELETE", "/upstreams/users/targets/"+a.addr+"?drain=30s", "") }()
	var removed *response
	var sr *response
	select {
	case removed = <-removeDone:
		// The gateway may have finished the slow request and the drain
		// before this process read the slow response (a busy machine):
		// what must not be is the gateway still serving it.
		if slowInFlight() {
			t.Fatalf("DELETE ?drain returned while the slow request was in flight: %d %s", removed.status, removed.body)
		}
		sr = <-slow
	case sr = <-slow:
		removed = <-removeDone
	}
	if sr.status != 200 || sr.header.Get("X-Stub-Name") != "a" {
		t.Fatalf("the request running on the drained target: %d from %q; want 200 from a", sr.status, sr.header.Get("X-Stub-Name"))
	}
	if removed.status != 200 || !strings.Contains(string(removed.body), `"drained": true`) {
		t.Fatalf("DELETE ?drain: %d %s; want 200 and drained", removed.status, removed.body)
	}
	after := a.stats(t).Requests
	seen := load.sent.Load()
	waitFor(t, "more load after the drain", 10*time.Second, func() bool { return load.sent.Load() > seen+500 })
	if now := a.stats(t).Requests; now != after {
		t.Fatalf("the removed target got %d new requests after the drain; want 0", now-after)
	}
	if st := g.upstreamState(t, "users"); len(st.Targets) != 2 || len(st.Draining) != 0 {
		t.Fatalf("after the drain: %d targets, %d draining; want 2 and 0", len(st.Targets), len(st.Draining))
	}

	// PUT replaces the whole list.
	r = g.adminBody(t, "PUT", "/upstreams/users/targets", `[{"url": "`+a.url()+`"}]`)
	if r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	seen = load.sent.Load()
	waitFor(t, "load after the PUT", 10*time.Second, func() bool { return load.sent.Load() > seen+200 })
	load.finish(t)
	t.Logf("%d requests, 0 failed, across an add, a drained removal and a replacement", load.sent.Load())

	// A reload of the file restores the config's targets.
	if r := g.admin(t, "POST", "/reload", targetsToken); r.status != 200 {
		t.Fatalf("reload: %d %s", r.status, r.body)
	}
	if st := g.upstreamState(t, "users"); st.Source != core.SourceConfig || len(st.Targets) != 2 {
		t.Fatalf("after a reload: source %q with %d targets; want config with 2", st.Source, len(st.Targets))
	}
}

// TestAdminTargetsNeedToken checks that an admin listener without a token
// refuses target changes, which move traffic.
func TestAdminTargetsNeedToken(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, `
upstreams:
  users: {targets: [{url: "{{a}}"}]}
routes:
  - {name: users, match: {path: "/users"}, upstream: users}
`, a)
	r := g.admin(t, "DELETE", "/upstreams/users/targets/"+a.addr, "")
	if r.status != 403 || !strings.Contains(string(r.body), "set admin.token") {
		t.Fatalf("DELETE without admin.token: %d %s; want 403 naming admin.token", r.status, r.body)
	}
	if r := g.get(t, "/users"); r.status != 200 || r.header.Get("X-Stub-Name") != "a" {
		t.Fatalf("after the refused DELETE: %d from %q; want 200 from a", r.status, r.header.Get("X-Stub-Name"))
	}
}
