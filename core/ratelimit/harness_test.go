package ratelimit

import (
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/coretest"
)

// harness runs a real core.Gateway (coretest) with this package's
// Builder, an in-memory upstream at 10.0.0.1:80 and in-memory clients from
// chosen peer addresses.
type harness struct {
	g   *coretest.Gateway
	gw  *core.Gateway
	b   *Builder
	rec *recorder
}

const upstreamBase = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
`

// newHarness starts a gateway with config upstreamBase+cfg; upstream
// serves 10.0.0.1:80 (nil: a 200 "ok").
func newHarness(t testing.TB, cfg string, upstream fasthttp.RequestHandler) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, upstream)
}

// newHarnessWith is newHarness with filters pre running before the rate
// limits.
func newHarnessWith(t testing.TB, cfg string, upstream fasthttp.RequestHandler, pre ...core.FilterBuilder) *harness {
	t.Helper()
	if upstream == nil {
		upstream = func(ctx *fasthttp.RequestCtx) { ctx.WriteString("ok") } //nolint:errcheck
	}
	h := &harness{}
	h.b = NewBuilder(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.rec = &recorder{Builder: h.b}
	t.Cleanup(h.b.Close) // after the gateway's Stop, registered below
	h.g = coretest.Start(t, upstreamBase+cfg, core.Options{Filters: append(pre, h.rec)},
		map[string]fasthttp.RequestHandler{"10.0.0.1:80": upstream})
	h.gw = h.g.Gateway
	return h
}

func mustConfig(t testing.TB, body string) *config.Config {
	t.Helper()
	c, err := config.ParseChecked([]byte(upstreamBase+body), "yaml", nil, nil)
	if err != nil {
		t.Fatalf("config: %s", err)
	}
	return c
}

// recorder is the Builder, keeping the Filters it builds.
type recorder struct {
	*Builder
	mu    sync.Mutex
	built []*Filter
}

func (r *recorder) Build(e *core.Env) (core.Filter, error) {
	f, err := r.Builder.Build(e)
	if err == nil {
		r.mu.Lock()
		r.built = append(r.built, f.(*Filter))
		r.mu.Unlock()
	}
	return f, err
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.built)
}

func (r *recorder) last() *Filter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.built[len(r.built)-1]
}
