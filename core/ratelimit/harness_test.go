package ratelimit

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/coretest"
)

// harness runs a real core.Gateway (coretest) with this package's
// Builder, an in-memory upstream at 10.0.0.1:80 and in-memory clients from
// chosen peer addresses.
type harness struct {
	t       testing.TB
	g       *coretest.Gateway
	gw      *core.Gateway
	b       *Builder
	rec     *recorder
	clients map[string]*fasthttp.Client
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
	h := &harness{t: t, clients: map[string]*fasthttp.Client{}}
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

// client returns a client whose connections come from peer (an IP).
func (h *harness) client(peer string) *fasthttp.Client {
	if c := h.clients[peer]; c != nil {
		return c
	}
	c := h.g.ClientFrom(peer)
	h.clients[peer] = c
	return c
}

// get sends GET uri from peer with "Name: value" headers; the caller
// releases the response.
func (h *harness) get(peer, uri string, headers ...string) *fasthttp.Response {
	h.t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://gw.local" + uri)
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp := fasthttp.AcquireResponse()
	if err := h.client(peer).DoTimeout(req, resp, 10*time.Second); err != nil {
		h.t.Fatalf("GET %s from %s: %s", uri, peer, err)
	}
	return resp
}

// status GETs uri and returns the status.
func (h *harness) status(peer, uri string, headers ...string) int {
	h.t.Helper()
	resp := h.get(peer, uri, headers...)
	defer fasthttp.ReleaseResponse(resp)
	return resp.StatusCode()
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
