package core

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

const routingConfig = `
listen: "127.0.0.1:0"
upstreams:
  users:  {targets: [{url: "http://10.0.0.1:80"}]}
  orders: {targets: [{url: "http://10.0.0.2"}]}
  api:    {targets: [{url: "http://10.0.0.3:80"}]}
  canary: {targets: [{url: "http://10.0.0.4:80"}]}
routes:
  - name: user
    match: {path: "/api/users/{id}", methods: [GET]}
    upstream: users
    rewrite: {path: "/users/{id}"}
  - name: user-write
    match: {path: "/api/users/{id}", methods: [PUT, DELETE]}
    upstream: api
  - name: canary
    match: {path: "/api/users/{id}", methods: [GET], headers: {x-env: canary}}
    upstream: canary
  - name: orders
    match: {path: "/api/orders/{rest:*}"}
    upstream: orders
    rewrite: {strip_prefix: /api}
  - name: search
    match: {path: "/search", query: {v: "2"}}
    upstream: api
    rewrite: {path: "/v2/search?src=gw"}
  - name: admin
    match: {hosts: [admin.example.com], path: "/{p:*}"}
    upstream: api
    rewrite: {host: preserve}
  - name: wildcard
    match: {hosts: ["*.example.com"], path: "/{p:*}"}
    upstream: canary
    rewrite: {host: backend.internal}
`

func routingHarness(t *testing.T) *harness {
	return newHarness(t, routingConfig, map[string]fasthttp.RequestHandler{
		"10.0.0.1:80": named("users"),
		"10.0.0.2:80": named("orders"),
		"10.0.0.3:80": named("api"),
		"10.0.0.4:80": named("canary"),
	})
}

func TestRouting(t *testing.T) {
	h := routingHarness(t)
	f := func(method, uri, host string, headers []string, wantStatus int, wantBy, wantURI, wantHost string) {
		t.Helper()
		resp := h.do(func(req *fasthttp.Request) {
			req.Header.SetMethod(method)
			req.SetRequestURI(uri)
			if host != "" {
				req.Header.SetHost(host)
				req.UseHostHeader = true
			}
			for _, hv := range headers {
				k, v, _ := strings.Cut(hv, ":")
				req.Header.Set(k, strings.TrimSpace(v))
			}
		})
		defer fasthttp.ReleaseResponse(resp)
		if got := resp.StatusCode(); got != wantStatus {
			t.Fatalf("%s %s (host %q): status got %d; want %d; body %s", method, uri, host, got, wantStatus, resp.Body())
		}
		if got := string(resp.Header.Peek("X-Served-By")); got != wantBy {
			t.Fatalf("%s %s (host %q): served by %q; want %q", method, uri, host, got, wantBy)
		}
		if got := string(resp.Header.Peek("X-Got-Uri")); got != wantURI {
			t.Fatalf("%s %s (host %q): upstream got URI %q; want %q", method, uri, host, got, wantURI)
		}
		if got := string(resp.Header.Peek("X-Got-Host")); wantHost != "" && got != wantHost {
			t.Fatalf("%s %s (host %q): upstream got Host %q; want %q", method, uri, host, got, wantHost)
		}
	}
	// Path templates, methods and rewrites.
	f("GET", "http://gw.local/api/users/7", "", nil, 200, "users", "/users/7", "10.0.0.1")
	f("HEAD", "http://gw.local/api/users/7", "", nil, 200, "users", "/users/7", "10.0.0.1")
	f("PUT", "http://gw.local/api/users/7", "", nil, 200, "api", "/api/users/7", "")
	f("GET", "http://gw.local/api/users/7", "", []string{"X-Env: canary"}, 200, "canary", "/api/users/7", "")
	f("GET", "http://gw.local/api/users/7", "", []string{"X-Env: prod"}, 200, "users", "/users/7", "")
	f("GET", "http://gw.local/api/orders/5/items?x=1&y=%20", "", nil, 200, "orders", "/orders/5/items?x=1&y=%20", "10.0.0.2")
	f("GET", "http://gw.local/api/orders", "", nil, 200, "orders", "/orders", "")
	f("GET", "http://gw.local/api/orders/", "", nil, 200, "orders", "/orders/", "")
	// Normalization: routed and forwarded on the normalized path.
	f("GET", "http://gw.local/api/x/../users/7", "", nil, 200, "users", "/users/7", "")
	f("GET", "http://gw.local/api//users/7", "", nil, 200, "users", "/users/7", "")
	f("GET", "http://gw.local/api/users/a%20b", "", nil, 200, "users", "/users/a%20b", "")
	// Query match and query rewrite.
	f("GET", "http://gw.local/search?v=2&q=go", "", nil, 200, "api", "/v2/search?src=gw&v=2&q=go", "")
	// Hosts: exact (case and port ignored), wildcard, then hostless routes.
	f("GET", "http://gw.local/x", "Admin.Example.COM:8080", nil, 200, "api", "/x", "Admin.Example.COM:8080")
	f("GET", "http://gw.local/x/y", "shop.example.com", nil, 200, "canary", "/x/y", "backend.internal")
	f("GET", "http://gw.local/api/users/1", "shop.example.com", nil, 200, "canary", "/api/users/1", "")
	f("GET", "http://gw.local/api/users/1", "example.com", nil, 200, "users", "/users/1", "")
}

func TestNoRouteAndMethodNotAllowed(t *testing.T) {
	h := routingHarness(t)
	f := func(method, uri string, wantStatus int, wantAllow string) {
		t.Helper()
		resp := h.do(func(req *fasthttp.Request) {
			req.Header.SetMethod(method)
			req.SetRequestURI(uri)
		})
		defer fasthttp.ReleaseResponse(resp)
		if got := resp.StatusCode(); got != wantStatus {
			t.Fatalf("%s %s: status got %d; want %d", method, uri, got, wantStatus)
		}
		if got := string(resp.Header.Peek("Allow")); got != wantAllow {
			t.Fatalf("%s %s: Allow got %q; want %q", method, uri, got, wantAllow)
		}
		if got := string(resp.Header.ContentType()); got != "application/json" {
			t.Fatalf("%s %s: Content-Type got %q; want application/json", method, uri, got)
		}
		var body struct {
			Error     string `json:"error"`
			Status    int    `json:"status"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(resp.Body(), &body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %s", method, uri, resp.Body(), err)
		}
		if body.Status != wantStatus || body.Error == "" || len(body.RequestID) != 32 {
			t.Fatalf("%s %s: body got %+v; want status %d, an error and a 32-digit request id", method, uri, body, wantStatus)
		}
		if got := string(resp.Header.Peek("X-Request-Id")); got != body.RequestID {
			t.Fatalf("%s %s: X-Request-ID header %q differs from body %q", method, uri, got, body.RequestID)
		}
	}
	f("GET", "http://gw.local/nope", 404, "")
	f("GET", "http://gw.local/search?v=1", 404, "")
	f("POST", "http://gw.local/api/users/7", 405, "GET, HEAD, PUT, DELETE")
	f("PATCH", "http://gw.local/api/users/7", 405, "GET, HEAD, PUT, DELETE")
}

// echoHandler answers with the request it received, as JSON.
func echoHandler(ctx *fasthttp.RequestCtx) {
	type echo struct {
		URI     string      `json:"uri"`
		Headers [][2]string `json:"headers"`
		Body    string      `json:"body"`
	}
	e := echo{URI: string(ctx.Request.Header.RequestURI()), Body: string(ctx.Request.Body())}
	for k, v := range ctx.Request.Header.All() {
		e.Headers = append(e.Headers, [2]string{string(k), string(v)})
	}
	b, _ := json.Marshal(e)
	ctx.Response.Header.Set("Connection", "X-Secret, keep-alive")
	ctx.Response.Header.Set("X-Secret", "internal")
	ctx.Response.Header.Set("Keep-Alive", "timeout=5")
	ctx.Response.Header.Set("Upgrade", "h2c")
	ctx.Response.Header.Set("Proxy-Authenticate", "Basic")
	ctx.Response.Header.Set("X-Kept", "yes")
	// Two lines of one name after the hop-by-hop ones the gateway removes.
	ctx.Response.Header.Add("Link", "</a>; rel=preload")
	ctx.Response.Header.Add("Link", "</b>; rel=preload")
	ctx.SetContentType("application/json")
	ctx.Write(b) //nolint:errcheck
}

type echoed struct {
	URI     string      `json:"uri"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
}

func (e *echoed) get(name string) []string {
	var out []string
	for _, kv := range e.Headers {
		if strings.EqualFold(kv[0], name) {
			out = append(out, kv[1])
		}
	}
	return out
}

func echoHarness(t *testing.T, trusted string) *harness {
	cfg := `
server: {trusted_proxies: [` + trusted + `]}
upstreams:
  echo: {targets: [{url: "http://10.0.0.9:80"}]}
routes:
  - match: {path: "/{p:*}"}
    upstream: echo
`
	return newHarness(t, cfg, map[string]fasthttp.RequestHandler{"10.0.0.9:80": echoHandler})
}

func (h *harness) echo(build func(req *fasthttp.Request)) (*echoed, *fasthttp.Response) {
	h.t.Helper()
	resp := h.do(build)
	var e echoed
	if err := json.Unmarshal(resp.Body(), &e); err != nil {
		h.t.Fatalf("echo body %q: %s", resp.Body(), err)
	}
	return &e, resp
}

func TestHeaderHygiene(t *testing.T) {
	h := echoHarness(t, "")
	e, resp := h.echo(func(req *fasthttp.Request) {
		req.SetRequestURI("http://gw.local/a?b=c")
		req.Header.SetMethod("POST")
		req.Header.Set("Connection", "keep-alive, X-Hop")
		req.Header.Set("X-Hop", "1")
		req.Header.Set("Keep-Alive", "timeout=5")
		req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
		req.Header.Set("Proxy-Connection", "keep-alive")
		req.Header.Set("Te", "trailers")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("X-Forwarded-For", "6.6.6.6")
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("Forwarded", "for=6.6.6.6")
		req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		req.Header.Set("X-Request-Id", "req-123")
		// Two lines of one name after the headers the gateway removes.
		req.Header.Add("Via", "1.1 first")
		req.Header.Add("Via", "1.1 second")
		req.SetBodyString("hello")
	})
	defer fasthttp.ReleaseResponse(resp)
	for _, name := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Upgrade", "Forwarded"} {
		if v := e.get(name); len(v) != 0 {
			t.Fatalf("upstream got hop-by-hop or untrusted header %s: %q", name, v)
		}
	}
	want := map[string]string{
		// In-memory connections have no IP: the peer shows as 0.0.0.0.
		"X-Forwarded-For":   "0.0.0.0",
		"X-Real-Ip":         "0.0.0.0",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "gw.local",
		"X-Request-Id":      "req-123",
		"Traceparent":       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	for k, v := range want {
		if got := e.get(k); len(got) != 1 || got[0] != v {
			t.Fatalf("upstream header %s: got %q; want [%q]", k, got, v)
		}
	}
	if e.Body != "hello" || e.URI != "/a?b=c" {
		t.Fatalf("upstream got body %q URI %q; want \"hello\" and \"/a?b=c\"", e.Body, e.URI)
	}
	for _, name := range []string{"X-Secret", "Keep-Alive", "Upgrade", "Proxy-Authenticate"} {
		if v := resp.Header.Peek(name); v != nil {
			t.Fatalf("client got upstream hop-by-hop header %s: %q", name, v)
		}
	}
	if resp.ConnectionClose() {
		t.Fatalf("client connection closed; want keep-alive")
	}
	if got := string(resp.Header.Peek("X-Kept")); got != "yes" {
		t.Fatalf("client header X-Kept: got %q; want \"yes\"", got)
	}
	if got := string(resp.Header.Peek("X-Request-Id")); got != "req-123" {
		t.Fatalf("client X-Request-ID: got %q; want \"req-123\"", got)
	}
	// Removing headers keeps the order of the lines of one name (RFC 9110
	// section 5.3), both ways.
	if got := e.get("Via"); len(got) != 2 || got[0] != "1.1 first" || got[1] != "1.1 second" {
		t.Errorf("upstream Via lines: got %q; want first, then second", got)
	}
	if got := resp.Header.PeekAll("Link"); len(got) != 2 || string(got[0]) != "</a>; rel=preload" || string(got[1]) != "</b>; rel=preload" {
		t.Errorf("client Link lines: got %q; want </a>, then </b>", got)
	}
}

// TestForwardedHeadersOnce sends two of each header the gateway sets and
// checks that the upstream gets exactly one, the gateway's: replacing only
// the first would pass the client's second on for an upstream to believe.
func TestForwardedHeadersOnce(t *testing.T) {
	dup := func(req *fasthttp.Request) {
		req.SetRequestURI("http://gw.local/")
		for _, kv := range [][2]string{
			{"X-Forwarded-For", "6.6.6.6"}, {"X-Real-Ip", "6.6.6.6"}, {"X-Forwarded-Proto", "https"},
			{"X-Forwarded-Host", "evil.example"}, {"Forwarded", "for=6.6.6.6"}, {"X-Request-Id", "req-1"},
		} {
			req.Header.Add(kv[0], kv[1])
			req.Header.Add(kv[0], kv[1]+"-again")
		}
	}
	// check wants one value of each header, one of the listed ones; none
	// for an empty list.
	check := func(e *echoed, want map[string][]string) {
		t.Helper()
		for k, vs := range want {
			got := e.get(k)
			if len(vs) == 0 && len(got) != 0 || len(vs) > 0 && (len(got) != 1 || !slices.Contains(vs, got[0])) {
				t.Errorf("upstream header %s: got %q; want one of %q", k, got, vs)
			}
		}
	}
	e, resp := echoHarness(t, "").echo(dup)
	fasthttp.ReleaseResponse(resp)
	check(e, map[string][]string{"X-Forwarded-For": {"0.0.0.0"}, "X-Real-Ip": {"0.0.0.0"}, "X-Forwarded-Proto": {"http"},
		"X-Forwarded-Host": {"gw.local"}, "Forwarded": nil, "X-Request-Id": {"req-1", "req-1-again"}})

	// From a trusted proxy one of its X-Forwarded-Proto and -Host lines
	// is kept, and Forwarded goes through untouched.
	e, resp = echoHarness(t, `"0.0.0.0"`).echo(dup)
	fasthttp.ReleaseResponse(resp)
	check(e, map[string][]string{"X-Real-Ip": {"0.0.0.0"}, "X-Forwarded-Proto": {"https", "https-again"},
		"X-Forwarded-Host": {"evil.example", "evil.example-again"}, "X-Request-Id": {"req-1", "req-1-again"}})
	if got := e.get("X-Forwarded-For"); len(got) != 1 || !strings.HasSuffix(got[0], ", 0.0.0.0") || !strings.Contains(got[0], "6.6.6.6-again") {
		t.Errorf("X-Forwarded-For from a trusted proxy: got %q; want its two lines joined, then the peer", got)
	}
	if got := e.get("Forwarded"); len(got) != 2 {
		t.Errorf("Forwarded from a trusted proxy: got %q; want both", got)
	}
}

func TestForwardedFromTrustedProxy(t *testing.T) {
	h := echoHarness(t, `"0.0.0.0", "10.1.0.0/16"`)
	f := func(xff []string, wantXFF, wantClient string) {
		t.Helper()
		e, resp := h.echo(func(req *fasthttp.Request) {
			req.SetRequestURI("http://gw.local/")
			for _, v := range xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			req.Header.Set("X-Forwarded-Proto", "https")
		})
		defer fasthttp.ReleaseResponse(resp)
		if got := e.get("X-Forwarded-For"); len(got) != 1 || got[0] != wantXFF {
			t.Fatalf("X-Forwarded-For %q: got %q; want %q", xff, got, wantXFF)
		}
		if got := e.get("X-Real-Ip"); len(got) != 1 || got[0] != wantClient {
			t.Fatalf("client IP for X-Forwarded-For %q: got %q; want %q", xff, got, wantClient)
		}
		if got := e.get("X-Forwarded-Proto"); len(got) != 1 || got[0] != "https" {
			t.Fatalf("X-Forwarded-Proto from a trusted proxy: got %q; want [https]", got)
		}
	}
	// lines sends the header lines kv (name, value, name, value...) and
	// checks the X-Forwarded-For and client IP the upstream gets.
	lines := func(what string, kv []string, wantXFF, wantClient string) {
		t.Helper()
		e, resp := h.echo(func(req *fasthttp.Request) {
			for i := 0; i+1 < len(kv); i += 2 {
				req.Header.Add(kv[i], kv[i+1])
			}
		})
		fasthttp.ReleaseResponse(resp)
		if got := e.get("X-Forwarded-For"); len(got) != 1 || got[0] != wantXFF {
			t.Errorf("X-Forwarded-For, %s: got %q; want [%q]", what, got, wantXFF)
		}
		if got := e.get("X-Real-Ip"); len(got) != 1 || got[0] != wantClient {
			t.Errorf("client IP, %s: got %q; want [%q]", what, got, wantClient)
		}
	}
	// A header the gateway deletes before the X-Forwarded-For lines makes
	// fasthttp move the last line into its place; the chain is read before.
	lines("two lines after a deleted header",
		[]string{"Keep-Alive", "timeout=5", "X-Forwarded-For", "1.2.3.4", "X-Forwarded-For", "5.6.7.8"},
		"1.2.3.4, 5.6.7.8, 0.0.0.0", "5.6.7.8")
	// X-Forwarded-For named by Connection is hop-by-hop: removed, and
	// not believed.
	lines("named by Connection", []string{"Connection", "X-Forwarded-For", "X-Forwarded-For", "1.2.3.4"},
		"0.0.0.0", "0.0.0.0")
	// The client is the rightmost untrusted entry, never the leftmost.
	// The in-memory peer shows as 0.0.0.0, trusted here.
	f([]string{"6.6.6.6, 1.2.3.4, 10.1.2.3"}, "6.6.6.6, 1.2.3.4, 10.1.2.3, 0.0.0.0", "1.2.3.4")
	f([]string{"6.6.6.6", "1.2.3.4"}, "6.6.6.6, 1.2.3.4, 0.0.0.0", "1.2.3.4")
	f([]string{"10.1.0.1"}, "10.1.0.1, 0.0.0.0", "10.1.0.1")
	f([]string{"garbage, 10.1.0.1"}, "garbage, 10.1.0.1, 0.0.0.0", "10.1.0.1")
	f([]string{"[2001:db8::1]:443"}, "[2001:db8::1]:443, 0.0.0.0", "2001:db8::1")
	f(nil, "0.0.0.0", "0.0.0.0")
}

func TestRequestIDGeneratedWhenMissingOrMalformed(t *testing.T) {
	h := echoHarness(t, "")
	f := func(in string) {
		t.Helper()
		e, resp := h.echo(func(req *fasthttp.Request) {
			if in != "" {
				req.Header.Set("X-Request-Id", in)
			}
		})
		defer fasthttp.ReleaseResponse(resp)
		got := e.get("X-Request-Id")
		if len(got) != 1 || len(got[0]) != 32 || got[0] == in {
			t.Fatalf("X-Request-ID %q: upstream got %q; want one new 32-digit id", in, got)
		}
		if c := string(resp.Header.Peek("X-Request-Id")); c != got[0] {
			t.Fatalf("client got X-Request-ID %q; want the upstream's %q", c, got[0])
		}
	}
	f("")
	f("has space")
	f(`"quoted"`)
	f(strings.Repeat("a", 129))
}

func TestUpstreamErrors(t *testing.T) {
	hang := func(ctx *fasthttp.RequestCtx) { time.Sleep(2 * time.Second) }
	cfg := `
upstreams:
  down: {targets: [{url: "http://10.0.0.20:80"}]}
  slow: {targets: [{url: "http://10.0.0.21:80"}], timeouts: {request: 150ms}}
  tiny:
    targets: [{url: "http://10.0.0.22:80"}]
    pool: {max_conns: 1}
    timeouts: {request: 30s}
routes:
  - {match: {path: "/down"}, upstream: down}
  - {match: {path: "/slow"}, upstream: slow}
  - {match: {path: "/tiny"}, upstream: tiny}
  - {match: {path: "/fast"}, upstream: slow, timeout: 50ms}
`
	entered, release := make(chan struct{}), make(chan struct{})
	h := newHarness(t, cfg, map[string]fasthttp.RequestHandler{
		"10.0.0.21:80": hang,
		"10.0.0.22:80": func(ctx *fasthttp.RequestCtx) { entered <- struct{}{}; <-release },
	})
	f := func(path string, want int) {
		t.Helper()
		body := h.expectStatus(path, want)
		if !bytes.Contains(body, []byte(`"status":`)) {
			t.Fatalf("GET %s: body %q is not the gateway's JSON error", path, body)
		}
	}
	f("/down", 502)
	f("/slow", 504)
	f("/fast", 504)

	// Pool exhausted: one connection, busy.
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp := h.get("http://gw.local/tiny")
		fasthttp.ReleaseResponse(resp)
	}()
	<-entered // the one connection is busy
	f("/tiny", 503)
	close(release)
	<-done
}

func TestStaleKeepAliveIsRetriedOnce(t *testing.T) {
	cfg := `
upstreams:
  u: {targets: [{url: "http://10.0.0.30:80"}]}
routes:
  - {match: {path: "/{p:*}"}, upstream: u}
`
	h := newHarness(t, cfg, map[string]fasthttp.RequestHandler{"10.0.0.30:80": named("first")})
	resp := h.get("http://gw.local/a")
	fasthttp.ReleaseResponse(resp)
	// Restart the upstream: the gateway's pooled connection is now closed.
	h.servers[0].Shutdown() //nolint:errcheck
	h.mu.Lock()
	h.upstream["10.0.0.30:80"].Close()
	ln := newInmemory()
	h.upstream["10.0.0.30:80"] = ln
	h.mu.Unlock()
	srv := &fasthttp.Server{Handler: named("second")}
	go srv.Serve(ln)     //nolint:errcheck
	defer srv.Shutdown() //nolint:errcheck
	resp = h.get("http://gw.local/b")
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 || string(resp.Body()) != "second" {
		t.Fatalf("GET after upstream restart: got %d %q; want 200 \"second\"", resp.StatusCode(), resp.Body())
	}
}

// After a burst the pool hands out its most recently used connection
// (LIFO, as nginx's keepalive cache), so the connections the burst opened
// sit idle and max_idle_conn_duration closes them. Taken oldest first
// (fasthttp's default), steady traffic cycles through every one of them
// and keeps them all open: 512 after a burst of 1,500 clients, at about
// 13% more CPU per request than the 32 the load needed.
func TestPoolReusesTheLatestConnection(t *testing.T) {
	const burst = 4
	cfg := `
upstreams:
  u: {targets: [{url: "http://10.0.0.31:80"}]}
routes:
  - {match: {path: "/{p:*}"}, upstream: u}
`
	arrived := make(chan struct{}, burst)
	release := make(chan struct{})
	h := newHarness(t, cfg, map[string]fasthttp.RequestHandler{"10.0.0.31:80": func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/hold" {
			arrived <- struct{}{}
			<-release
		}
		fmt.Fprintf(ctx, "%d", ctx.ConnID())
	}})
	// A burst: burst requests at once, each on its own upstream connection.
	errs := make(chan error, burst)
	for range burst {
		go func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://gw.local/hold")
			errs <- h.client.DoTimeout(req, resp, 10*time.Second)
		}()
	}
	for range burst {
		<-arrived
	}
	close(release)
	for range burst {
		if err := <-errs; err != nil {
			t.Fatalf("burst request: %s", err)
		}
	}
	// Steady traffic, one request at a time: one connection serves it all.
	seen := map[string]int{}
	for range 2 * burst {
		resp := h.get("http://gw.local/id")
		seen[string(resp.Body())]++
		fasthttp.ReleaseResponse(resp)
	}
	if len(seen) != 1 {
		t.Fatalf("%d sequential requests after a burst of %d used upstream connections %v (ID: requests); want one connection", 2*burst, burst, seen)
	}
}

func TestLargeAndChunkedResponsesStream(t *testing.T) {
	const size = 5 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	cfg := `
upstreams:
  big:
    targets: [{url: "http://10.0.0.40:80"}]
    pool: {max_buffered_body: 64KiB}
routes:
  - {match: {path: "/{p:*}"}, upstream: big}
`
	h := newHarness(t, cfg, map[string]fasthttp.RequestHandler{"10.0.0.40:80": func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/chunked":
			ctx.SetBodyStream(bytes.NewReader(body), -1)
		case "/small-chunked":
			ctx.SetBodyStream(strings.NewReader("tiny"), -1)
		default:
			ctx.SetBody(body)
		}
	}})
	f := func(path string, want []byte) {
		t.Helper()
		for i := 0; i < 3; i++ { // the connection goes back to the pool each time
			resp := h.get("http://gw.local" + path)
			if resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), want) {
				t.Fatalf("GET %s #%d: status %d, %d body bytes; want 200 and %d bytes intact", path, i, resp.StatusCode(), len(resp.Body()), len(want))
			}
			fasthttp.ReleaseResponse(resp)
		}
	}
	f("/length", body)
	f("/chunked", body)
	f("/small-chunked", []byte("tiny"))
}

func TestMalformedRequestNeverReachesUpstream(t *testing.T) {
	hits := 0
	cfg := `
server: {max_request_body: 1KiB}
upstreams:
  u: {targets: [{url: "http://10.0.0.50:80"}]}
routes:
  - {match: {path: "/{p:*}"}, upstream: u}
`
	h := newHarness(t, cfg, map[string]fasthttp.RequestHandler{"10.0.0.50:80": func(ctx *fasthttp.RequestCtx) { hits++ }})
	f := func(raw string, want string) {
		t.Helper()
		c, err := h.gwLn.Dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		var resp fasthttp.Response
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		if err := resp.Read(bufioReader(c)); err != nil {
			t.Fatalf("reading response to %q: %s", raw, err)
		}
		if got := strings.Fields(string(resp.Header.Header()))[1]; got != want {
			t.Fatalf("request %q: status got %s; want %s", raw, got, want)
		}
	}
	f("GET / HTTP/1.1\r\n\r\n", "400")                                 // no Host
	f("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", "400") // bad length
	f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n"+strings.Repeat("x", 2000), "413")
	if hits != 0 {
		t.Fatalf("upstream got %d requests; want 0", hits)
	}
}

func TestPanicBecomesJSON500(t *testing.T) {
	cfg := `
upstreams:
  u: {targets: [{url: "http://10.0.0.60:80"}]}
routes:
  - {match: {path: "/{p:*}"}, upstream: u}
`
	c := mustConfig(t, cfg)
	gw, err := New(c, Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Dial:   func(string) (net.Conn, error) { panic("dial exploded") },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(gw) })
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("http://gw.local/x")
	ctx.Request.Header.Set("X-Request-Id", "panic-1")
	gw.Handler(&ctx)
	if ctx.Response.StatusCode() != 500 || !bytes.Contains(ctx.Response.Body(), []byte(`"request_id":"panic-1"`)) {
		t.Fatalf("after a panic: got %d %q; want 500 with the request id", ctx.Response.StatusCode(), ctx.Response.Body())
	}
}

func TestMaxResponseBody(t *testing.T) {
	cfg := `
upstreams:
  u:
    targets: [{url: "http://10.0.0.70:80"}]
    pool: {max_response_body: 1KiB, max_buffered_body: 1KiB}
routes:
  - {match: {path: "/{p:*}"}, upstream: u}
`
	h := newHarness(t, cfg, map[string]fasthttp.RequestHandler{"10.0.0.70:80": func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/ok":
			ctx.SetBody(bytes.Repeat([]byte("a"), 1024))
		case "/big":
			ctx.SetBody(bytes.Repeat([]byte("a"), 1025))
		}
	}})
	h.expectStatus("/ok", 200)
	h.expectStatus("/big", 502)
}

func TestResponseHeadersAreTheUpstreams(t *testing.T) {
	cfg := `
upstreams:
  u: {targets: [{url: "http://10.0.0.80:80"}]}
routes:
  - {match: {path: "/{p:*}"}, upstream: u}
`
	h := newHarness(t, cfg, map[string]fasthttp.RequestHandler{"10.0.0.80:80": func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/typed" {
			ctx.Response.Header.Set("Server", "svc/1.0")
			ctx.SetContentType("text/csv")
		}
		ctx.WriteString("a,b") //nolint:errcheck
	}})
	f := func(path, wantType, wantServer string) {
		t.Helper()
		resp := h.get("http://gw.local" + path)
		defer fasthttp.ReleaseResponse(resp)
		// fasthttp's client reports a default Content-Type when there is
		// none: look at the header as received instead.
		resp.Header.SetNoDefaultContentType(true)
		if got := string(resp.Header.ContentType()); got != wantType {
			t.Fatalf("GET %s: Content-Type got %q; want %q; header:\n%s", path, got, wantType, resp.Header.Header())
		}
		if got := string(resp.Header.Server()); got != wantServer {
			t.Fatalf("GET %s: Server got %q; want %q", path, got, wantServer)
		}
	}
	f("/untyped", "", "")
	f("/typed", "text/csv", "svc/1.0")
}

func TestRouteTimeoutOverridesUpstreamRequestTimeout(t *testing.T) {
	cfg := `
upstreams:
  slow: {targets: [{url: "http://10.0.0.90:80"}], timeouts: {request: 100ms}}
  tries: {targets: [{url: "http://10.0.0.90:80"}], timeouts: {request: 2s, per_try: 100ms}}
routes:
  - {match: {path: "/default"}, upstream: slow}
  - {match: {path: "/long"}, upstream: slow, timeout: 2s}
  - {match: {path: "/per-try"}, upstream: tries, timeout: 2s}
`
	h := newHarness(t, cfg, map[string]fasthttp.RequestHandler{"10.0.0.90:80": func(ctx *fasthttp.RequestCtx) {
		time.Sleep(300 * time.Millisecond)
	}})
	// The upstream takes 300ms.
	h.expectStatus("/default", 504)
	h.expectStatus("/long", 200)
	h.expectStatus("/per-try", 504)
}
