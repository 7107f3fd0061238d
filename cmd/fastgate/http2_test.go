package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// TestHTTP2TLS: with server.http2 a client that offers h2 by ALPN is served
// HTTP/2 through the route, its filters and the proxy (X-Forwarded-Proto
// https, security headers), and an HTTP/1.1 client on the same port still
// gets HTTP/1.1.
func TestHTTP2TLS(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.issue(t, t.TempDir(), "a", 100, "a.example.test")
	echo := startUpstream(t, "echo", "-echo")
	g := startGateway(t, `
server: {http2: true}
tls: {certs: [{cert: "`+cert+`", key: "`+key+`"}]}
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
routes:
  - {name: echo, match: {path: "/{rest:*}"}, upstream: echo, rate_limit: {rate: 1000, key: ip}}
`, echo)
	tlsConf := &tls.Config{RootCAs: ca.pool, ServerName: "a.example.test"}
	f := func(c *http.Client, proto string) {
		t.Helper()
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + g.addr + "/hello?x=1")
		if err != nil {
			t.Fatalf("%s: %s", proto, err)
		}
		r := readResponse(t, resp)
		e := mustEcho(t, r)
		if resp.Proto != proto || e.Path != "/hello" || e.Query != "x=1" || strings.Join(e.Values("X-Forwarded-Proto"), ",") != "https" ||
			r.header.Get("Strict-Transport-Security") == "" || r.header.Get("RateLimit-Policy") == "" || r.header.Get("X-Request-Id") == "" {
			t.Fatalf("%s: got %s, path %q query %q, X-Forwarded-Proto %q, headers %v; want %s through the route and its filters",
				proto, resp.Proto, e.Path, e.Query, e.Values("X-Forwarded-Proto"), r.header, proto)
		}
	}
	f(&http.Client{Timeout: clientWait, Transport: &http2.Transport{TLSClientConfig: tlsConf}}, "HTTP/2.0")
	f(&http.Client{Timeout: clientWait, Transport: &http.Transport{TLSClientConfig: tlsConf}}, "HTTP/1.1")
}

// TestH2C: with server.h2c, a client speaking HTTP/2 with prior knowledge
// and an HTTP/1.1 client share the plain port; a POST body goes through.
func TestH2C(t *testing.T) {
	echo := startUpstream(t, "echo", "-echo")
	g := startGateway(t, `
server: {h2c: true}
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
routes:
  - {name: echo, match: {path: "/{rest:*}"}, upstream: echo}
`, echo)
	h2c := &http.Client{Timeout: clientWait, Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
	defer h2c.CloseIdleConnections()
	resp, err := h2c.Post("http://"+g.addr+"/items", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	e := mustEcho(t, readResponse(t, resp))
	if resp.Proto != "HTTP/2.0" || e.Method != "POST" || e.Body != "payload" || strings.Join(e.Values("X-Forwarded-Proto"), ",") != "http" {
		t.Fatalf("h2c: %s %s %q %q; want HTTP/2.0 POST payload http", resp.Proto, e.Method, e.Body, e.Values("X-Forwarded-Proto"))
	}
	if r := g.get(t, "/plain"); r.status != 200 {
		t.Fatalf("HTTP/1.1 on the h2c port: %d", r.status)
	}
}
