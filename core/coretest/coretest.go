// Package coretest runs a core.Gateway in memory for the tests of feature
// packages (filters and terminals outside core): fasthttp in-memory
// listeners for the gateway and its upstreams, a client, and a config from
// YAML. It is for tests only; nothing in the gateway imports it.
package coretest

import (
	"context"
	"fmt"
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

// Gateway is a core.Gateway served on an in-memory listener.
type Gateway struct {
	*core.Gateway
	// Client sends requests to the gateway; any host name reaches it.
	Client *fasthttp.Client

	t        testing.TB
	ln       *fasthttputil.InmemoryListener
	mu       sync.Mutex
	upstream map[string]*fasthttputil.InmemoryListener
	peers    map[string]*fasthttp.Client // PeerClient's, by peer
	servers  []*fasthttp.Server
	stopped  bool
}

// Start parses cfg (YAML, with defaults and validation) and serves it with
// opts. upstreams maps target addresses of cfg ("10.0.0.1:80") to
// handlers; a target without one refuses connections. Everything stops
// when the test ends.
func Start(t testing.TB, cfg string, opts core.Options, upstreams map[string]fasthttp.RequestHandler) *Gateway {
	t.Helper()
	g := &Gateway{t: t, ln: fasthttputil.NewInmemoryListener(), upstream: make(map[string]*fasthttputil.InmemoryListener)}
	for addr, h := range upstreams {
		ln := fasthttputil.NewInmemoryListener()
		srv := &fasthttp.Server{Handler: h, Logger: quiet{}}
		go srv.Serve(ln) //nolint:errcheck
		g.upstream[addr] = ln
		g.servers = append(g.servers, srv)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	opts.Dial = g.dial
	gw, err := core.New(Config(t, cfg), opts)
	if err != nil {
		t.Fatalf("core.New: %s", err)
	}
	g.Gateway = gw
	go gw.Serve(g.ln) //nolint:errcheck
	g.Client = &fasthttp.Client{
		Dial:                      func(string) (net.Conn, error) { return g.ln.Dial() },
		NoDefaultUserAgentHeader:  true,
		MaxIdemponentCallAttempts: 1,
		ReadTimeout:               10 * time.Second,
	}
	t.Cleanup(g.Stop)
	return g
}

// Config parses, defaults and validates a YAML config.
func Config(t testing.TB, yaml string) *config.Config {
	t.Helper()
	c, err := config.ParseChecked([]byte(yaml), "yaml", func(string) (string, bool) { return "", false }, nil)
	if err != nil {
		t.Fatalf("config:\n%s", err)
	}
	return c
}

func (g *Gateway) dial(addr string) (net.Conn, error) {
	g.mu.Lock()
	ln := g.upstream[addr]
	g.mu.Unlock()
	if ln == nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connection refused")}
	}
	return ln.Dial()
}

// Stop shuts the gateway down (flushing its access log) and its
// upstreams. It is idempotent; Start registers it as a test cleanup.
func (g *Gateway) Stop() {
	g.mu.Lock()
	servers := g.servers
	g.servers = nil
	g.mu.Unlock()
	if servers == nil && g.stopped {
		return
	}
	g.stopped = true
	g.ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Shutdown(ctx) //nolint:errcheck
	for _, s := range servers {
		s.Shutdown() //nolint:errcheck
	}
}

// ClientFrom returns a client whose connections come from peer (an IP),
// as the gateway sees them: for per-IP limits and trusted proxies.
func (g *Gateway) ClientFrom(peer string) *fasthttp.Client {
	return &fasthttp.Client{
		Dial:                      func(string) (net.Conn, error) { return g.DialFrom(peer) },
		NoDefaultUserAgentHeader:  true,
		MaxIdemponentCallAttempts: 1,
		ReadTimeout:               10 * time.Second,
	}
}

// DialFrom opens a raw connection to the gateway from peer (an IP).
func (g *Gateway) DialFrom(peer string) (net.Conn, error) {
	return g.ln.DialWithLocalAddr(&net.TCPAddr{IP: net.ParseIP(peer), Port: 40000})
}

// PeerClient is ClientFrom(peer) made once and kept: every call for one
// peer returns the same client, so its connections are reused. It is safe
// for concurrent use.
func (g *Gateway) PeerClient(peer string) *fasthttp.Client {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.peers[peer]
	if c == nil {
		c = g.ClientFrom(peer)
		if g.peers == nil {
			g.peers = make(map[string]*fasthttp.Client)
		}
		g.peers[peer] = c
	}
	return c
}

// GetFrom sends GET http://gw.local+uri from peer (an IP) with "Name: value"
// headers over PeerClient(peer), waiting up to 10s, and returns the
// response, which the caller releases with fasthttp.ReleaseResponse. An
// error fails the test.
func (g *Gateway) GetFrom(peer, uri string, headers ...string) *fasthttp.Response {
	g.t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://gw.local" + uri)
	addHeaders(req, headers)
	resp := fasthttp.AcquireResponse()
	if err := g.PeerClient(peer).DoTimeout(req, resp, 10*time.Second); err != nil {
		g.t.Fatalf("GET %s from %s: %s", uri, peer, err)
	}
	return resp
}

// StatusFrom is GetFrom's status code; it releases the response.
func (g *Gateway) StatusFrom(peer, uri string, headers ...string) int {
	g.t.Helper()
	resp := g.GetFrom(peer, uri, headers...)
	defer fasthttp.ReleaseResponse(resp)
	return resp.StatusCode()
}

// Do sends method uri with "Name: value" headers and returns the response,
// which the caller releases with fasthttp.ReleaseResponse.
func (g *Gateway) Do(method, uri string, headers ...string) *fasthttp.Response {
	g.t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	addHeaders(req, headers)
	resp := fasthttp.AcquireResponse()
	if err := g.Client.DoTimeout(req, resp, 10*time.Second); err != nil {
		g.t.Fatalf("%s %s: %s", method, uri, err)
	}
	return resp
}

// addHeaders adds "Name: value" headers to req.
func addHeaders(req *fasthttp.Request, headers []string) {
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
