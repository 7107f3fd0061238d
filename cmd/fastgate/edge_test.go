package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestEdge runs the edge filters in the real binary: CORS preflights
// answered by the gateway without reaching the upstream, the CORS headers
// of actual requests, a removed X-Gw-* response header, IP rules behind a
// trusted proxy, and the security headers on proxied answers and the
// gateway's own errors.
func TestEdge(t *testing.T) {
	echo := startUpstream(t, "echo", "-echo")
	var hits atomic.Int64
	counted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Gw-Secret", "internal")
		w.Header().Set("X-Gw-Trace", "t1")
		w.Header().Set("X-Total", "7")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Write([]byte("ok")) //nolint:errcheck
	}))
	t.Cleanup(counted.Close)
	g := startGateway(t, `
server: {trusted_proxies: ["127.0.0.1"]}
security_headers: {frame_options: DENY}
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
  counted: {targets: [{url: "`+counted.URL+`"}]}
routes:
  - name: api
    match: {path: "/api/{rest:*}", methods: [GET, PUT]}
    upstream: counted
    cors:
      allow_origins: ["https://app.example.com", "https://*.example.org"]
      allow_headers: [Content-Type]
      expose_headers: [X-Total]
      allow_credentials: true
      max_age: 1m
    headers: {response: {remove: ["X-Gw-*"]}}
  - name: internal
    match: {path: "/internal/{rest:*}"}
    upstream: echo
    ip: {allow: ["192.0.2.0/24"]}
    headers: {request: {set: {X-Client: "{client_ip}"}}}
  - name: missing
    match: {path: /missing}
    static: {status: 404, body: "nope"}
`, echo)
	security := func(what string, r *response) {
		t.Helper()
		if got := r.header.Get("X-Frame-Options"); got != "DENY" {
			t.Errorf("%s: X-Frame-Options got %q; want DENY", what, got)
		}
		if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options got %q; want nosniff", what, got)
		}
		if got := r.header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("%s: Strict-Transport-Security got %q on plain HTTP; want none", what, got)
		}
	}

	// preflight: answered by the gateway
	r := g.do(t, "OPTIONS", "/api/items", "", "Origin: https://a.b.example.org", "Access-Control-Request-Method: PUT",
		"Access-Control-Request-Headers: content-type")
	if r.status != http.StatusNoContent {
		t.Fatalf("preflight: status got %d; want 204; body %s", r.status, r.body)
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin":      "https://a.b.example.org",
		"Access-Control-Allow-Methods":     "GET, PUT",
		"Access-Control-Allow-Headers":     "Content-Type",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Max-Age":           "60",
		"Vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("preflight: %s got %q; want %q", name, got, want)
		}
	}
	security("preflight", r)
	if n := hits.Load(); n != 0 {
		t.Fatalf("preflight: the upstream got %d requests; want 0", n)
	}
	r = g.do(t, "OPTIONS", "/api/items", "", "Origin: https://evil.example.com", "Access-Control-Request-Method: PUT")
	checkGatewayError(t, "preflight from another origin", r, http.StatusForbidden)
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("refused preflight: Access-Control-Allow-Origin got %q; want none", got)
	}

	// actual request
	r = g.get(t, "/api/items", "Origin: https://app.example.com")
	if r.status != http.StatusOK || hits.Load() != 1 {
		t.Fatalf("GET: status %d, upstream requests %d; want 200 and 1", r.status, hits.Load())
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin":      "https://app.example.com",
		"Access-Control-Allow-Credentials": "true",
		"Access-Control-Expose-Headers":    "X-Total",
		"Vary":                             "Accept-Encoding, Origin",
		"X-Gw-Secret":                      "",
		"X-Gw-Trace":                       "",
		"X-Total":                          "7",
	} {
		if got := strings.Join(r.header.Values(name), "|"); got != want {
			t.Errorf("GET: %s got %q; want %q", name, got, want)
		}
	}
	security("proxied", r)
	r = g.get(t, "/api/items", "Origin: https://evil.com")
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from another origin: status %d, Access-Control-Allow-Origin %q; want 200 without it",
			r.status, r.header.Get("Access-Control-Allow-Origin"))
	}

	// IP rules behind the trusted proxy 127.0.0.1
	e := mustEcho(t, g.get(t, "/internal/x", "X-Forwarded-For: 198.51.100.1, 192.0.2.5"))
	if got := e.Values("X-Client"); !slices.Equal(got, []string{"192.0.2.5"}) {
		t.Errorf("X-Client sent upstream got %q; want [192.0.2.5]", got)
	}
	r = g.get(t, "/internal/x", "X-Forwarded-For: 192.0.2.5, 198.51.100.1")
	checkGatewayError(t, "client outside ip.allow", r, http.StatusForbidden)
	security("403 of the ip filter", r)

	// the gateway's own 404 of a static route
	r = g.get(t, "/missing")
	if r.status != http.StatusNotFound {
		t.Fatalf("GET /missing: status got %d; want 404", r.status)
	}
	security("static 404", r)
}

// TestEdgeUntrustedPeer checks that the X-Forwarded-For of a peer that is
// not a trusted proxy is ignored: the peer is the client.
func TestEdgeUntrustedPeer(t *testing.T) {
	echo := startUpstream(t, "echo", "-echo")
	g := startGateway(t, `
server: {trusted_proxies: ["10.0.0.0/8"]}
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
routes:
  - {name: internal, match: {path: "/internal"}, upstream: echo, ip: {allow: ["192.0.2.0/24"]}}
  - {name: local, match: {path: "/local"}, upstream: echo, ip: {allow: ["127.0.0.1"], deny: ["192.0.2.0/24"]}}
`, echo)
	r := g.get(t, "/internal", "X-Forwarded-For: 192.0.2.5")
	checkGatewayError(t, "forged X-Forwarded-For from an untrusted peer", r, http.StatusForbidden)
	mustEcho(t, g.get(t, "/local", "X-Forwarded-For: 192.0.2.5"))
}

// TestEdgeCheck checks that fastgate -check reports a bad CIDR with its
// path.
func TestEdgeCheck(t *testing.T) {
	path := writeConfig(t, `
listen: "127.0.0.1:0"
upstreams:
  users: {targets: [{url: "http://127.0.0.1:9001"}]}
ip: {deny: [10.0.0.1, 10.0.0.2, 10.0.0.0/33]}
routes:
  - {upstream: users, ip: {allow: [10.0.0.1/8]}, cors: {allow_origins: ["htp://x"]}}
`)
	code, _, stderr := runFastgate(t, "-check", "-config", path)
	if code != 1 {
		t.Fatalf("-check: exit code got %d; want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		`ip.deny[2]: "10.0.0.0/33" is not an IP or CIDR`,
		`routes[0].ip.allow[0]: "10.0.0.1/8" has host bits set: its network is "10.0.0.0/8"`,
		`routes[0].cors.allow_origins[0]: "htp://x" is not an origin`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("-check: stderr has no %q; stderr:\n%s", want, stderr)
		}
	}
}
