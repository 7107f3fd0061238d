package core

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

// gateFilter lets requests through unless they carry X-Deny-<name>, panics
// on X-Panic-<name>, and counts its phases.
type gateFilter struct {
	name              string
	seen, after, done atomic.Int64
	lastRoute         atomic.Value
	closed            atomic.Bool
	state             int
}

func (f *gateFilter) Filter(ctx *fasthttp.RequestCtx, r *Request) bool {
	f.seen.Add(1)
	f.lastRoute.Store(r.Route)
	if len(ctx.Request.Header.Peek("X-Panic-"+f.name)) > 0 {
		panic("filter " + f.name + " panics")
	}
	if len(ctx.Request.Header.Peek("X-Deny-"+f.name)) > 0 {
		r.Fail(ctx, &Error{fasthttp.StatusTooManyRequests, errors.New("denied by " + f.name)})
		return false
	}
	r.SetState(&f.state)
	return true
}

func (f *gateFilter) After(ctx *fasthttp.RequestCtx, r *Request) {
	if r.State() != &f.state {
		panic("After does not see the state its Filter set")
	}
	f.after.Add(1)
}

func (f *gateFilter) Done(ctx *fasthttp.RequestCtx, r *Request) {
	if r.State() != &f.state {
		panic("Done does not see the state its Filter set")
	}
	f.done.Add(1)
}

func (f *gateFilter) Close() error { f.closed.Store(true); return nil }

// gateBuilder gives routes whose name starts with "guarded" a filter named
// name, built from the route's timeout (its key), and counts its builds.
type gateBuilder struct {
	name   string
	builds atomic.Int64
	last   atomic.Pointer[gateFilter]
}

func (b *gateBuilder) Key(_ *config.Config, rc *config.Route) any {
	if !strings.HasPrefix(rc.Name, "guarded") && rc.Name != "broken" {
		return nil
	}
	return rc.Timeout
}

func (b *gateBuilder) Validate(e *Env) error {
	if e.Route.Name == "broken" {
		return errors.New("rate_limit.rate: must be > 0")
	}
	return nil
}

func (b *gateBuilder) Build(e *Env) (Filter, error) {
	b.builds.Add(1)
	e.Counter(`fastgate_test_gate_total{route="` + e.Route.Name + `"}`)
	f := &gateFilter{name: b.name}
	b.last.Store(f)
	return f, nil
}

const gateConfig = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - {name: guarded, match: {path: /g}, upstream: users}
  - {name: open, match: {path: /o}, upstream: users}
`

func TestFilterChain(t *testing.T) {
	b1, b2 := &gateBuilder{name: "first"}, &gateBuilder{name: "second"}
	h := newHarness(t, gateConfig, map[string]fasthttp.RequestHandler{"10.0.0.1:80": named("users")}, func(o *Options) {
		o.Filters = []FilterBuilder{b1, b2}
	})
	first, second := b1.last.Load(), b2.last.Load()
	f := func(path, header string, status int, want ...int64) {
		t.Helper()
		var hs []string
		if header != "" {
			hs = append(hs, header+": 1")
		}
		resp := h.get("http://gw.local"+path, hs...)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != status {
			t.Fatalf("GET %s (%s): status %d; want %d", path, header, resp.StatusCode(), status)
		}
		got := []int64{first.seen.Load(), second.seen.Load(), first.after.Load(), second.after.Load(), first.done.Load(), second.done.Load()}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("GET %s (%s): filter counts (seen1 seen2 after1 after2 done1 done2) got %v; want %v", path, header, got, want)
			}
		}
	}
	f("/g", "", 200, 1, 1, 1, 1, 1, 1)
	f("/o", "", 200, 1, 1, 1, 1, 1, 1)               // no filter on this route
	f("/g", "X-Deny-second", 429, 2, 2, 2, 1, 2, 1)  // the first passed: its After and Done run
	f("/g", "X-Deny-first", 429, 3, 2, 2, 1, 2, 1)   // stopped at the first: no response phase
	f("/g", "X-Panic-second", 500, 4, 3, 3, 1, 3, 1) // a panic later on: the first's phases still run
	if r := first.lastRoute.Load(); r != "guarded" {
		t.Fatalf("Request.Route: got %v; want guarded", r)
	}
	if first.closed.Load() {
		t.Fatal("filter closed while serving")
	}
	if !strings.Contains(metricsText(h.gw), `fastgate_test_gate_total{route="guarded"}`) {
		t.Fatal("a feature's series is missing from /metrics")
	}

	// A reload with the same key takes the instances over: no build, no close.
	if err := h.gw.Apply(mustConfig(t, gateConfig)); err != nil {
		t.Fatal(err)
	}
	h.gw.retiring.Wait()
	if n := b1.builds.Load(); n != 1 || first.closed.Load() {
		t.Fatalf("reload with an unchanged key: builds %d (want 1), closed %v (want false)", n, first.closed.Load())
	}
	// A changed key builds a new instance and closes the old once drained.
	if err := h.gw.Apply(mustConfig(t, strings.Replace(gateConfig, "path: /g}", "path: /g}, timeout: 5s", 1))); err != nil {
		t.Fatal(err)
	}
	h.gw.retiring.Wait()
	if n := b1.builds.Load(); n != 2 || !first.closed.Load() {
		t.Fatalf("reload with a changed key: builds %d (want 2), old closed %v (want true)", n, first.closed.Load())
	}
	// Dropping the route closes its filter and unregisters its series.
	if err := h.gw.Apply(mustConfig(t, `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - {name: open, match: {path: /o}, upstream: users}
`)); err != nil {
		t.Fatal(err)
	}
	h.gw.retiring.Wait()
	if !b1.last.Load().closed.Load() {
		t.Fatal("filter of a removed route not closed after the reload drained")
	}
	if strings.Contains(metricsText(h.gw), "fastgate_test_gate_total") {
		t.Fatal("a removed feature's series is still in /metrics")
	}
}

func TestFilterBuildError(t *testing.T) {
	b := &gateBuilder{}
	_, err := Compile(mustConfig(t, `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - {name: guarded, match: {path: /a}, upstream: users}
  - {name: broken, match: {path: /b}, upstream: users}
`), &Options{Filters: []FilterBuilder{b}})
	if err == nil || err.Error() != "routes[1]: rate_limit.rate: must be > 0" {
		t.Fatalf("Compile: got %v; want routes[1]: rate_limit.rate: must be > 0", err)
	}
	if n := b.builds.Load(); n != 0 {
		t.Fatalf("Compile (-check) built %d filters; want 0: it only validates", n)
	}
}

func metricsText(g *Gateway) string {
	var sb strings.Builder
	g.Metrics().Set().WritePrometheus(&sb)
	return sb.String()
}

// slowBuilder's Build waits until released, as a feature dialing Redis
// or etcd may.
type slowBuilder struct{ entered, release chan struct{} }

func (b slowBuilder) Key(_ *config.Config, rc *config.Route) any { return rc.Name }
func (b slowBuilder) Validate(*Env) error                        { return nil }
func (b slowBuilder) Build(*Env) (Filter, error) {
	b.entered <- struct{}{}
	<-b.release
	return &gateFilter{}, nil
}

// TestApplyBuildsWithoutTheGatewayLock: while a reload's feature is being
// built, /metrics (which takes the gateway's lock for the in-flight gauge)
// and requests are served.
func TestApplyBuildsWithoutTheGatewayLock(t *testing.T) {
	b := slowBuilder{entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := newHarness(t, gateConfig, map[string]fasthttp.RequestHandler{"10.0.0.1:80": named("users")})
	h.gw.opts.Filters = []FilterBuilder{b}
	applied := make(chan error, 1)
	go func() { applied <- h.gw.Apply(mustConfig(t, gateConfig)) }()
	<-b.entered // the first route's filter is being built
	if !strings.Contains(metricsText(h.gw), "fastgate_inflight_requests") {
		t.Fatal("/metrics without the in-flight gauge")
	}
	h.expectStatus("/g", 200)
	close(b.release)
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
}
