package core

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"fastgate/core/config"
)

// harness runs a Gateway and fake upstreams on in-memory listeners.
type harness struct {
	t        testing.TB
	gw       *Gateway
	gwLn     *fasthttputil.InmemoryListener
	client   *fasthttp.Client
	mu       sync.Mutex
	upstream map[string]*fasthttputil.InmemoryListener
	servers  []*fasthttp.Server
}

// newHarness starts the gateway with the YAML config cfg. handlers maps
// target addresses used in cfg ("10.0.0.1:80") to fake upstream handlers;
// an address without a handler refuses connections.
func newHarness(t testing.TB, cfg string, handlers map[string]fasthttp.RequestHandler, options ...func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, upstream: make(map[string]*fasthttputil.InmemoryListener)}
	for addr, hd := range handlers {
		ln := fasthttputil.NewInmemoryListener()
		srv := &fasthttp.Server{Handler: hd, NoDefaultServerHeader: true, NoDefaultDate: true, NoDefaultContentType: true, Logger: quiet{}}
		go srv.Serve(ln) //nolint:errcheck
		h.upstream[addr] = ln
		h.servers = append(h.servers, srv)
	}
	c := mustConfig(t, cfg)
	opts := Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Dial:   h.dial,
	}
	for _, o := range options {
		o(&opts)
	}
	gw, err := New(c, opts)
	if err != nil {
		t.Fatalf("New: %s", err)
	}
	h.gw = gw
	h.gwLn = fasthttputil.NewInmemoryListener()
	go gw.Serve(h.gwLn) //nolint:errcheck
	h.client = &fasthttp.Client{
		Dial:                      func(string) (net.Conn, error) { return h.gwLn.Dial() },
		NoDefaultUserAgentHeader:  true,
		MaxIdemponentCallAttempts: 1,
		ReadTimeout:               10 * time.Second,
	}
	t.Cleanup(h.close)
	return h
}

func (h *harness) dial(addr string) (net.Conn, error) {
	h.mu.Lock()
	ln := h.upstream[addr]
	h.mu.Unlock()
	if ln == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connection refused")}
	}
	return ln.Dial()
}

func (h *harness) close() {
	h.gwLn.Close()
	for _, s := range h.servers {
		s.Shutdown() //nolint:errcheck
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.gw.Shutdown(ctx) //nolint:errcheck
}

// do sends a request built by build and returns the response, which the
// caller releases with fasthttp.ReleaseResponse.
func (h *harness) do(build func(req *fasthttp.Request)) *fasthttp.Response {
	h.t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://gw.local/")
	build(req)
	resp := fasthttp.AcquireResponse()
	if err := h.client.DoTimeout(req, resp, 10*time.Second); err != nil {
		h.t.Fatalf("request %s %s: %s", req.Header.Method(), req.URI(), err)
	}
	return resp
}

// get is do for a GET of uri with optional "Name: value" headers.
func (h *harness) get(uri string, headers ...string) *fasthttp.Response {
	h.t.Helper()
	return h.do(func(req *fasthttp.Request) {
		req.SetRequestURI(uri)
		for _, hv := range headers {
			k, v, _ := strings.Cut(hv, ":")
			req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	})
}

func mustConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(yaml), "yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config.Parse: %s", err)
	}
	d := config.BuiltinDefaults()
	c.SetDefaults(&d)
	if err := c.Validate(); err != nil {
		t.Fatalf("config.Validate: %s", err)
	}
	return c
}

// named answers with its name in the body and X-Served-By, and echoes the
// request line and a few headers in response headers.
func named(name string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Served-By", name)
		ctx.Response.Header.SetBytesV("X-Got-Uri", ctx.Request.Header.RequestURI())
		ctx.Response.Header.SetBytesV("X-Got-Host", ctx.Request.Header.Host())
		ctx.Response.Header.SetContentType("text/plain")
		ctx.WriteString(name) //nolint:errcheck
	}
}

func newInmemory() *fasthttputil.InmemoryListener { return fasthttputil.NewInmemoryListener() }

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// parseAnyEntry reports whether some X-Forwarded-For entry parses to ip.
func parseAnyEntry(xff string, ip netip.Addr) (netip.Addr, bool) {
	for _, e := range strings.Split(xff, ",") {
		if a, ok := parseForwardedIP([]byte(strings.TrimSpace(e))); ok && a == ip {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// quiet is a fasthttp.Logger that drops everything: test upstreams log
// every connection the harness closes.
type quiet struct{}

func (quiet) Printf(string, ...any) {}

// expectStatus GETs path from the gateway, fails unless the status is want,
// and returns a copy of the body.
func (h *harness) expectStatus(path string, want int) []byte {
	h.t.Helper()
	resp := h.get("http://gw.local" + path)
	defer fasthttp.ReleaseResponse(resp)
	if got := resp.StatusCode(); got != want {
		h.t.Fatalf("GET %s: status got %d; want %d; body %s", path, got, want, resp.Body())
	}
	return append([]byte(nil), resp.Body()...)
}
