package ratelimit

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"fastgate/core"
	"fastgate/core/config"
)

// harness runs a real core.Gateway with this package's Builder, an
// in-memory upstream at 10.0.0.1:80 and in-memory clients from chosen peer
// addresses.
type harness struct {
	t       testing.TB
	gw      *core.Gateway
	b       *Builder
	rec     *recorder
	gwLn    *fasthttputil.InmemoryListener
	upLn    *fasthttputil.InmemoryListener
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
	if upstream == nil {
		upstream = func(ctx *fasthttp.RequestCtx) { ctx.WriteString("ok") } //nolint:errcheck
	}
	h := &harness{t: t, gwLn: fasthttputil.NewInmemoryListener(), upLn: fasthttputil.NewInmemoryListener(),
		clients: map[string]*fasthttp.Client{}}
	up := &fasthttp.Server{Handler: upstream, Logger: quiet{}}
	go up.Serve(h.upLn) //nolint:errcheck
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h.b = NewBuilder(Options{Logger: log})
	h.rec = &recorder{Builder: h.b}
	gw, err := core.New(mustConfig(t, cfg), core.Options{
		Logger:  log,
		Dial:    func(string) (net.Conn, error) { return h.upLn.Dial() },
		Filters: []core.FilterBuilder{h.rec},
	})
	if err != nil {
		t.Fatalf("core.New: %s", err)
	}
	h.gw = gw
	go gw.Serve(h.gwLn) //nolint:errcheck
	t.Cleanup(func() {
		h.gwLn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Shutdown(ctx) //nolint:errcheck
		h.b.Close()
		up.Shutdown() //nolint:errcheck
	})
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
	addr := &net.TCPAddr{IP: net.ParseIP(peer), Port: 40000}
	c := &fasthttp.Client{
		Dial:                      func(string) (net.Conn, error) { return h.gwLn.DialWithLocalAddr(addr) },
		MaxIdemponentCallAttempts: 1,
		ReadTimeout:               10 * time.Second,
	}
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

type quiet struct{}

func (quiet) Printf(string, ...any) {}

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
