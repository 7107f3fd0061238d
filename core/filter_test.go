package core

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

// gateFilter lets requests through unless they carry X-Deny, and counts its
// response phase.
type gateFilter struct {
	name        string
	seen, after atomic.Int64
	lastRoute   atomic.Value
	closed      atomic.Bool
}

func (f *gateFilter) Filter(ctx *fasthttp.RequestCtx, r *Request) bool {
	f.seen.Add(1)
	f.lastRoute.Store(r.Route)
	if len(ctx.Request.Header.Peek("X-Deny-"+f.name)) > 0 {
		ctx.SetStatusCode(fasthttp.StatusTooManyRequests)
		ctx.SetBodyString(`{"error":"denied by ` + f.name + `"}`)
		return false
	}
	return true
}

func (f *gateFilter) After(ctx *fasthttp.RequestCtx, r *Request) { f.after.Add(1) }

func (f *gateFilter) Close() error { f.closed.Store(true); return nil }

// gateBuilder gives routes whose name starts with "guarded" its filter.
type gateBuilder struct{ f *gateFilter }

func (b gateBuilder) Build(cfg *config.Config, rc *config.Route, set *metrics.Set) (Filter, error) {
	if rc.Name == "broken" {
		return nil, errors.New("rate_limit.rate: must be > 0")
	}
	if !strings.HasPrefix(rc.Name, "guarded") {
		return nil, nil
	}
	return b.f, nil
}

func TestFilterChain(t *testing.T) {
	first, second := &gateFilter{name: "first"}, &gateFilter{name: "second"}
	h := newHarness(t, `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - {name: guarded, match: {path: /g}, upstream: users}
  - {name: open, match: {path: /o}, upstream: users}
`, map[string]fasthttp.RequestHandler{"10.0.0.1:80": named("users")}, func(o *Options) {
		o.Filters = []FilterBuilder{gateBuilder{first}, gateBuilder{second}}
	})
	f := func(path, header string, status int, seen1, seen2, after1, after2 int64) {
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
		got := []int64{first.seen.Load(), second.seen.Load(), first.after.Load(), second.after.Load()}
		want := []int64{seen1, seen2, after1, after2}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("GET %s (%s): filter counts (seen1 seen2 after1 after2) got %v; want %v", path, header, got, want)
			}
		}
	}
	f("/g", "", 200, 1, 1, 1, 1)
	f("/o", "", 200, 1, 1, 1, 1)              // no filter on this route
	f("/g", "X-Deny-second", 429, 2, 2, 2, 1) // the first passed: its After runs
	f("/g", "X-Deny-first", 429, 3, 2, 2, 1)  // stopped at the first: no After
	if r := first.lastRoute.Load(); r != "guarded" {
		t.Fatalf("Request.Route: got %v; want guarded", r)
	}
	if first.closed.Load() {
		t.Fatal("filter closed while serving")
	}
	// A reload that keeps the filter does not close it; dropping the route does.
	if err := h.gw.Apply(mustConfig(t, `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - {name: open, match: {path: /o}, upstream: users}
`)); err != nil {
		t.Fatal(err)
	}
	h.gw.retiring.Wait()
	if !first.closed.Load() {
		t.Fatal("filter of a removed route not closed after the reload drained")
	}
}

func TestFilterBuildError(t *testing.T) {
	_, err := Compile(mustConfig(t, `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - {name: ok, match: {path: /a}, upstream: users}
  - {name: broken, match: {path: /b}, upstream: users}
`), &Options{Filters: []FilterBuilder{gateBuilder{&gateFilter{}}}})
	if err == nil || err.Error() != "routes[1]: rate_limit.rate: must be > 0" {
		t.Fatalf("Compile: got %v; want routes[1]: rate_limit.rate: must be > 0", err)
	}
}
