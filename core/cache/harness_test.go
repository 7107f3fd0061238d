package cache

import (
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/coretest"
	"fastgate/core/static"
)

// harness runs a real core.Gateway (coretest) with this package's
// Builder on a virtual clock, an in-memory upstream at 10.0.0.1:80
// counting its requests, and a test filter before the cache that sets the
// consumer named by X-Test-Consumer.
type harness struct {
	t     testing.TB
	g     *coretest.Gateway
	b     *Builder
	clock *clock
	calls atomic.Int64
	// refreshed receives the key of each finished background refresh.
	refreshed chan string
}

const upstreamBase = `
upstreams:
  app: {targets: [{url: "http://10.0.0.1:80"}]}
`

// newHarness starts a gateway with config upstreamBase+cfg; upstream
// answers 10.0.0.1:80 (nil: 200 "ok" with Cache-Control: max-age=60).
func newHarness(t testing.TB, cfg string, upstream fasthttp.RequestHandler) *harness {
	t.Helper()
	if upstream == nil {
		upstream = func(ctx *fasthttp.RequestCtx) {
			ctx.Response.Header.Set("Cache-Control", "max-age=60")
			ctx.WriteString("ok") //nolint:errcheck
		}
	}
	h := &harness{t: t, clock: &clock{t: time.Now()}, refreshed: make(chan string, 16)}
	h.b = NewBuilder(Options{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:       h.clock.now,
		OnRefresh: func(key string, _ error) { h.refreshed <- key },
	})
	t.Cleanup(h.b.Close) // after the gateway's Stop, registered below
	count := func(ctx *fasthttp.RequestCtx) {
		h.calls.Add(1)
		upstream(ctx)
	}
	h.g = coretest.Start(t, upstreamBase+cfg, core.Options{Filters: []core.FilterBuilder{consumerBuilder{}, h.b}, Terminals: []core.TerminalBuilder{static.Builder{}}},
		map[string]fasthttp.RequestHandler{"10.0.0.1:80": count})
	return h
}

// get sends GET http://gw.local+uri with headers and returns the
// response's status, X-Cache and body; it releases the response.
func (h *harness) get(uri string, headers ...string) (int, string, string) {
	h.t.Helper()
	return h.do(fasthttp.MethodGet, uri, headers...)
}

func (h *harness) do(method, uri string, headers ...string) (int, string, string) {
	h.t.Helper()
	resp := h.g.Do(method, "http://gw.local"+uri, headers...)
	defer fasthttp.ReleaseResponse(resp)
	return resp.StatusCode(), string(resp.Header.Peek("X-Cache")), string(resp.Body())
}

// expect checks a GET's X-Cache and the upstream's request count after
// it.
func (h *harness) expect(uri, xcache string, calls int64, headers ...string) {
	h.t.Helper()
	_, got, _ := h.get(uri, headers...)
	if got != xcache || h.calls.Load() != calls {
		h.t.Fatalf("GET %s %v: X-Cache %q, %d upstream requests; want %q, %d", uri, headers, got, h.calls.Load(), xcache, calls)
	}
}

// clock is a virtual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// consumerBuilder is a test filter setting the consumer named by the
// request's X-Test-Consumer header, as auth would.
type consumerBuilder struct{}

func (consumerBuilder) Key(*config.Config, *config.Route) any { return true }
func (consumerBuilder) Validate(*core.Env) error              { return nil }
func (consumerBuilder) Build(*core.Env) (core.Filter, error)  { return consumerFilter{}, nil }

var testConsumers = map[string]*core.Consumer{"alice": {Name: "alice", Index: 0}, "bob": {Name: "bob", Index: 1}}

type consumerFilter struct{}

func (consumerFilter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	if c := testConsumers[string(ctx.Request.Header.Peek("X-Test-Consumer"))]; c != nil {
		r.SetConsumer(c)
	}
	return true
}
