package main

// Integration tests of the real binaries: fastgate and the stub upstream
// built by TestMain, run as processes on loopback ports.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRouting(t *testing.T) {
	ups := []*upstream{
		startUpstream(t, "exact"),
		startUpstream(t, "wild"),
		startUpstream(t, "users"),
		startUpstream(t, "canary"),
		startUpstream(t, "files"),
		startUpstream(t, "search"),
	}
	g := startGateway(t, `
upstreams:
  exact:  {targets: [{url: "{{exact}}"}]}
  wild:   {targets: [{url: "{{wild}}"}]}
  users:  {targets: [{url: "{{users}}"}]}
  canary: {targets: [{url: "{{canary}}"}]}
  files:  {targets: [{url: "{{files}}"}]}
  search: {targets: [{url: "{{search}}"}]}
routes:
  - name: exact-host
    match: {hosts: [api.example.com], path: "/{rest:*}"}
    upstream: exact
  - name: wildcard-host
    match: {hosts: ["*.example.com"], path: "/{rest:*}"}
    upstream: wild
  - name: user
    match: {path: "/users/{id}", methods: [GET, PUT]}
    upstream: users
  - name: user-canary
    match: {path: "/users/{id}", methods: [GET], headers: {X-Env: canary}}
    upstream: canary
  - name: files
    match: {path: "/files/{rest:*}"}
    upstream: files
  - name: search
    match: {path: "/search", query: {v: "2"}}
    upstream: search
`, ups...)

	f := func(method, path, host string, headers []string, wantStatus int, wantName string) {
		t.Helper()
		r := g.do(t, method, path, host, headers...)
		if r.status != wantStatus {
			t.Fatalf("%s %s (host %q, headers %q): status got %d; want %d; body %s", method, path, host, headers, r.status, wantStatus, r.body)
		}
		if got := r.header.Get("X-Stub-Name"); got != wantName {
			t.Fatalf("%s %s (host %q, headers %q): X-Stub-Name got %q; want %q", method, path, host, headers, got, wantName)
		}
	}
	// Host: exact first, then the wildcard, then the hostless routes.
	f("GET", "/users/1", "api.example.com", nil, 200, "exact")
	f("GET", "/anything/at/all", "API.Example.COM:8080", nil, 200, "exact")
	f("GET", "/users/1", "eu.api.example.com", nil, 200, "wild")
	f("POST", "/x", "a.example.com", nil, 200, "wild")
	f("GET", "/users/1", "example.com", nil, 200, "users") // not under *.example.com
	f("GET", "/users/1", "other.test", nil, 200, "users")

	// Path templates: {id} is one whole segment, {rest:*} the rest, even empty.
	f("GET", "/users/42", "", nil, 200, "users")
	f("GET", "/files/a/b/c.txt", "", nil, 200, "files")
	f("GET", "/files/", "", nil, 200, "files")
	f("GET", "/files", "", nil, 200, "files")

	// Methods: GET implies HEAD; a listed method is served.
	f("HEAD", "/users/42", "", nil, 200, "users")
	f("PUT", "/users/42", "", nil, 200, "users")

	// Header and query conditions.
	f("GET", "/users/42", "", []string{"X-Env: canary"}, 200, "canary")
	f("GET", "/users/42", "", []string{"X-Env: prod"}, 200, "users")
	f("GET", "/search?v=2", "", nil, 200, "search")
	f("GET", "/search?q=go&v=2", "", nil, 200, "search")

	notFound := func(method, path string, headers ...string) {
		t.Helper()
		r := g.do(t, method, path, "other.test", headers...)
		checkGatewayError(t, method+" "+path, r, http.StatusNotFound)
		if got := r.header.Get("X-Stub-Name"); got != "" {
			t.Fatalf("%s %s: X-Stub-Name got %q; want none (the gateway answers)", method, path, got)
		}
	}
	notFound("GET", "/users/42/extra")
	notFound("GET", "/users")
	notFound("GET", "/users/")
	notFound("GET", "/nothing")
	notFound("GET", "/search")
	notFound("GET", "/search?v=1")
	notFound("GET", "/search?v=22")

	notAllowed := func(method, path, wantAllow string, headers ...string) {
		t.Helper()
		r := g.do(t, method, path, "other.test", headers...)
		checkGatewayError(t, method+" "+path, r, http.StatusMethodNotAllowed)
		if got := r.header.Get("Allow"); got != wantAllow {
			t.Fatalf("%s %s: Allow got %q; want %q", method, path, got, wantAllow)
		}
	}
	notAllowed("DELETE", "/users/42", "GET, HEAD, PUT")
	notAllowed("POST", "/users/42", "GET, HEAD, PUT", "X-Env: canary")
}

func TestRewrites(t *testing.T) {
	e := startUpstream(t, "echo", "-echo")
	g := startGateway(t, `
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
routes:
  - name: strip
    match: {path: "/api/{rest:*}"}
    upstream: echo
    rewrite: {strip_prefix: /api}
  - name: orders
    match: {path: "/users/{id}/orders"}
    upstream: echo
    rewrite: {path: "/orders?user={id}"}
  - name: user
    match: {path: "/users/{id}"}
    upstream: echo
    rewrite: {path: "/v2/users/{id}"}
  - name: preserve
    match: {hosts: [preserve.test], path: "/{rest:*}"}
    upstream: echo
    rewrite: {host: preserve}
  - name: literal
    match: {hosts: [literal.test], path: "/{rest:*}"}
    upstream: echo
    rewrite: {host: backend.internal}
`, e)

	f := func(path, host, wantURI, wantHost string) {
		t.Helper()
		got := mustEcho(t, g.do(t, "GET", path, host))
		if got.URI != wantURI {
			t.Fatalf("GET %s (host %q): upstream URI got %q; want %q", path, host, got.URI, wantURI)
		}
		if got.Host != wantHost {
			t.Fatalf("GET %s (host %q): upstream Host got %q; want %q", path, host, got.Host, wantHost)
		}
	}
	// strip_prefix, at a segment boundary, the query kept.
	f("/api/users", "", "/users", e.addr)
	f("/api/users/7?x=1&y=2", "", "/users/7?x=1&y=2", e.addr)
	f("/api", "", "/", e.addr)
	f("/api?x=1", "", "/?x=1", e.addr)
	// A path template with parameters and a query part; the client's query
	// comes after '&'.
	f("/users/42/orders", "", "/orders?user=42", e.addr)
	f("/users/42/orders?limit=5&sort=asc", "", "/orders?user=42&limit=5&sort=asc", e.addr)
	f("/users/a%20b/orders", "", "/orders?user=a%20b", e.addr)
	f("/users/42", "", "/v2/users/42", e.addr)
	// rewrite.host: target (the default), preserve, a literal name.
	f("/p?q=1", "preserve.test", "/p?q=1", "preserve.test")
	f("/p", "preserve.test:8080", "/p", "preserve.test:8080")
	f("/p", "literal.test", "/p", "backend.internal")

	// Normalization: routed on, and forwarded as, the normalized path. Sent
	// over a raw connection so that no client library cleans the path first.
	raw := func(path, wantURI string) {
		t.Helper()
		c := g.dialRaw(t)
		got := mustEcho(t, c.send("GET "+path+" HTTP/1.1", "Host: raw.test"))
		if got.URI != wantURI {
			t.Fatalf("GET %s: upstream URI got %q; want %q", path, got.URI, wantURI)
		}
	}
	raw("/api/x/../users/7", "/users/7")
	raw("/api/./users/./7", "/users/7")
	raw("/api//users//7", "/users/7")
	raw("/x/../users/7", "/v2/users/7")
	raw("/api/users/%37", "/users/7")
}

// hopRequestHeaders are hop-by-hop headers a client sends; none may reach an
// upstream.
var hopRequestHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Upgrade",
	"X-Named-By-Connection", "X-Also-Named",
}

func TestRequestHeaders(t *testing.T) {
	e := startUpstream(t, "echo", "-echo")
	g := startGateway(t, `
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
routes:
  - match: {path: "/{rest:*}"}
    upstream: echo
`, e)
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	c := g.dialRaw(t)
	r := c.send(
		"GET /headers HTTP/1.1",
		"Host: client.test:8080",
		"Connection: keep-alive, X-Named-By-Connection,x-also-named",
		"X-Named-By-Connection: secret",
		"X-Also-Named: secret",
		"Keep-Alive: timeout=5",
		"Proxy-Authorization: Basic Zm9vOmJhcg==",
		"Proxy-Connection: keep-alive",
		"TE: trailers",
		"Upgrade: websocket",
		"X-Forwarded-For: 9.9.9.9",
		"X-Forwarded-Proto: https",
		"X-Forwarded-Host: forged.test",
		"Forwarded: for=9.9.9.9;proto=https",
		"X-Request-ID: req-123.abc",
		"traceparent: "+traceparent,
		"X-Kept: yes",
	)
	got := mustEcho(t, r)
	for _, h := range hopRequestHeaders {
		if vs := got.Values(h); len(vs) > 0 {
			t.Errorf("upstream received hop-by-hop header %s: %q; want it removed", h, vs)
		}
	}
	f := func(name string, want ...string) {
		t.Helper()
		if vs := got.Values(name); strings.Join(vs, "|") != strings.Join(want, "|") {
			t.Errorf("upstream header %s got %q; want %q", name, vs, want)
		}
	}
	f("X-Forwarded-For", "127.0.0.1")
	f("X-Real-Ip", "127.0.0.1")
	f("X-Forwarded-Proto", "http")
	f("X-Forwarded-Host", "client.test:8080")
	f("Forwarded")
	f("X-Request-Id", "req-123.abc")
	f("Traceparent", traceparent)
	f("X-Kept", "yes")
	if got := r.header.Get("X-Request-ID"); got != "req-123.abc" {
		t.Errorf("response X-Request-ID got %q; want %q", got, "req-123.abc")
	}

	// A missing or malformed X-Request-ID is replaced by a generated one,
	// the same upstream and in the response.
	generated := regexp.MustCompile(`^[0-9a-f]{32}$`)
	id := func(header string) {
		t.Helper()
		lines := []string{"GET /id HTTP/1.1", "Host: client.test"}
		if header != "" {
			lines = append(lines, header)
		}
		r := c.send(lines...)
		got := mustEcho(t, r)
		vs := got.Values("X-Request-Id")
		if len(vs) != 1 || !generated.MatchString(vs[0]) {
			t.Fatalf("with %q: upstream X-Request-ID got %q; want one generated id of 32 hex digits", header, vs)
		}
		if rid := r.header.Get("X-Request-ID"); rid != vs[0] {
			t.Fatalf("with %q: response X-Request-ID got %q; want the upstream's %q", header, rid, vs[0])
		}
	}
	id("")
	id("X-Request-ID: has space")
	id(`X-Request-ID: "quoted"`)
	id("X-Request-ID: " + strings.Repeat("a", 129))
}

func TestTrustedProxyHeaders(t *testing.T) {
	e := startUpstream(t, "echo", "-echo")
	g := startGateway(t, `
server:
  trusted_proxies: ["127.0.0.1"]
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
routes:
  - match: {path: "/{rest:*}"}
    upstream: echo
`, e)
	got := mustEcho(t, g.get(t, "/xff", "X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https"))
	f := func(name string, want ...string) {
		t.Helper()
		if vs := got.Values(name); strings.Join(vs, "|") != strings.Join(want, "|") {
			t.Errorf("upstream header %s got %q; want %q", name, vs, want)
		}
	}
	f("X-Forwarded-For", "1.2.3.4, 127.0.0.1")
	f("X-Real-Ip", "1.2.3.4")
	f("X-Forwarded-Proto", "https")
}

func TestResponseKeepAlive(t *testing.T) {
	g := plainGateway(t)
	c := g.dialRaw(t)
	f := func(i int, extra ...string) {
		t.Helper()
		r := c.send(append([]string{"GET /ka/" + strconv.Itoa(i) + " HTTP/1.1", "Host: client.test"}, extra...)...)
		if r.status != 200 || string(r.body) != "ok" {
			t.Fatalf("request %d %q on one connection: got %d %q; want 200 \"ok\"", i, extra, r.status, r.body)
		}
		if got := r.header.Get("X-Stub-Name"); got != "plain" {
			t.Fatalf("request %d: X-Stub-Name got %q; want %q", i, got, "plain")
		}
		if r.close || len(r.header.Values("Connection")) > 0 {
			t.Fatalf("request %d %q: Connection got %q (close %t); want none (the connection stays open)", i, extra, r.header.Values("Connection"), r.close)
		}
	}
	for i := range 5 {
		f(i)
	}
	// The upstream closing its own connection is hop-by-hop: the client's
	// connection stays open.
	f(5, "X-Stub-Close: 1")
	f(6)

	// Asked by the client: Connection: close, then the gateway closes.
	r := c.send("GET /ka/last HTTP/1.1", "Host: client.test", "Connection: close")
	if r.status != 200 {
		t.Fatalf("last request: status got %d; want 200", r.status)
	}
	if !r.close {
		t.Fatalf("last request with Connection: close: response has no Connection: close; want it")
	}
	c.c.SetReadDeadline(time.Now().Add(clientWait)) //nolint:errcheck
	if n, err := c.br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after Connection: close: read got %d bytes, %v; want EOF", n, err)
	}
}

func TestUpstreamErrors(t *testing.T) {
	s := startUpstream(t, "stub")
	tiny := startUpstream(t, "tiny")
	closed := freePort(t) // nothing listens there
	g := startGateway(t, `
upstreams:
  dead: {targets: [{url: "http://`+closed+`"}]}
  stub: {targets: [{url: "{{stub}}"}]}
  tiny:
    targets: [{url: "{{tiny}}"}]
    pool: {max_conns: 1}
routes:
  - name: dead
    match: {path: "/dead/{rest:*}"}
    upstream: dead
  - name: slow
    match: {path: "/slow/{rest:*}"}
    upstream: stub
    timeout: 200ms
  - name: stub
    match: {path: "/stub/{rest:*}"}
    upstream: stub
  - name: tiny
    match: {path: "/tiny/{rest:*}"}
    upstream: tiny
`, s, tiny)

	checkGatewayError(t, "closed port", g.get(t, "/dead/x"), http.StatusBadGateway)
	checkGatewayError(t, "reset", g.get(t, "/stub/reset", "X-Stub-Reset: 1"), http.StatusBadGateway)
	checkGatewayError(t, "reset (query knob)", g.get(t, "/stub/reset?stub_reset=1"), http.StatusBadGateway)

	start := time.Now()
	r := g.get(t, "/slow/hang", "X-Stub-Hang: 1")
	elapsed := time.Since(start)
	checkGatewayError(t, "hang past a 200ms route timeout", r, http.StatusGatewayTimeout)
	if elapsed > 5*time.Second {
		t.Errorf("hang past a 200ms route timeout: the client waited %s; want well under 5s", elapsed)
	}
	// The upstream still serves after all that.
	if r := g.get(t, "/stub/ok"); r.status != 200 || string(r.body) != "ok" {
		t.Fatalf("after the errors: got %d %q; want 200 \"ok\"", r.status, r.body)
	}

	// Pool exhausted: the one connection to tiny is held by a request that
	// tiny answers only when it stops, so another request gets 503 at once
	// (no max_conn_wait_timeout).
	slowc := make(chan tryResult, 1)
	go func() {
		r, err := g.try("GET", "/tiny/slow", "", "X-Stub-Latency: 60s")
		slowc <- tryResult{r, err}
	}()
	waitFor(t, "the slow request at tiny", clientWait, func() bool { return tiny.stats(t).Get == 1 })
	checkGatewayError(t, "pool exhausted", g.get(t, "/tiny/fast"), http.StatusServiceUnavailable)
	// Stopping tiny ends the slow request's wait: tiny answers it, then exits.
	if code := tiny.stop(); code != 0 {
		t.Fatalf("tiny exit code after SIGTERM got %d; want 0; stderr:\n%s", code, tiny.stderr.String())
	}
	res := <-slowc // g.try is bounded by clientWait
	if res.err != nil || res.r.status != http.StatusOK {
		t.Fatalf("the slow request holding the pool: got %v, %v; want status 200", res.r, res.err)
	}
}

// tryResult is the outcome of gateway.try run in a goroutine.
type tryResult struct {
	r   *response
	err error
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(`
listen: "127.0.0.1:0"
server:
  read_timout: 5s
upstreams:
  users:
    targets: [{url: "ftp://127.0.0.1:9001"}]
    timeouts: {connect: 5 parsecs}
routes:
  - match: {path: "/users/{id}"}
    upstream: userz
`), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(`
listen: "127.0.0.1:0"
upstreams:
  users: {targets: [{url: "http://127.0.0.1:9001"}]}
routes:
  - match: {path: "/users/{id}"}
    upstream: users
`), 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		return runFastgate(t, args...)
	}

	code, stdout, stderr := run("-check", "-config", good)
	if code != 0 || !strings.HasPrefix(stdout, "ok") {
		t.Fatalf("-check of a good config: got exit %d, stdout %q, stderr %q; want exit 0 and a line starting with \"ok\"", code, stdout, stderr)
	}

	code, _, stderr = run("-check", "-config", bad)
	if code != 1 {
		t.Fatalf("-check of a bad config: exit code got %d; want 1; stderr:\n%s", code, stderr)
	}
	f := func(path, what string) { t.Helper(); wantProblem(t, stderr, path, what) }
	f("server.read_timout", "unknown field")
	f("upstreams.users.timeouts.connect", "5 parsecs")
	f("upstreams.users.targets[0].url", "ftp")
	f("routes[0].upstream", "userz")

	// Without -check the bad config is refused: exit 1, nothing listens.
	code, _, stderr = run("-config", bad)
	if code != 1 || !strings.Contains(stderr, "invalid config") {
		t.Fatalf("starting with a bad config: got exit %d, stderr %q; want exit 1 and \"invalid config\"", code, stderr)
	}
}

func TestStreamedBodies(t *testing.T) {
	g := plainGateway(t)
	c := g.dialRaw(t)
	// All on one client connection: a streamed body leaves it usable.
	f := func(size int, chunked bool) {
		t.Helper()
		lines := []string{"GET /body HTTP/1.1", "Host: client.test", "X-Stub-Size: " + strconv.Itoa(size)}
		wantLength := int64(size)
		if chunked {
			lines = append(lines, "X-Stub-Chunked: 1")
			wantLength = -1
		}
		r := c.send(lines...)
		if r.status != 200 || len(r.body) != size {
			t.Fatalf("size %d chunked %t: got %d with %d bytes; want 200 with %d", size, chunked, r.status, len(r.body), size)
		}
		if r.length != wantLength {
			t.Fatalf("size %d chunked %t: Content-Length got %d; want %d (-1: chunked)", size, chunked, r.length, wantLength)
		}
		if r.close {
			t.Fatalf("size %d chunked %t: got Connection: close; want the connection kept", size, chunked)
		}
	}
	f(3<<20, false) // beyond max_buffered_body (1MiB): streamed
	f(3<<20, true)
	f(1000, true)
	f(1000, false) // buffered
	f(0, true)
	f(3<<20, false)

	// The upstream's own error status passes through as it is.
	r := g.get(t, "/status", "X-Stub-Status: 503")
	if r.status != 503 || string(r.body) != "ok" || r.header.Get("X-Stub-Name") != "plain" {
		t.Fatalf("upstream 503: got %d %q from %q; want the upstream's 503 \"ok\" from \"plain\"", r.status, r.body, r.header.Get("X-Stub-Name"))
	}
}

func TestGracefulStop(t *testing.T) {
	u := startUpstream(t, "slow")
	g := startGateway(t, `
upstreams:
  slow: {targets: [{url: "{{slow}}"}]}
routes:
  - match: {path: "/{rest:*}"}
    upstream: slow
`, u)
	c := g.dialRaw(t)
	c.c.SetDeadline(time.Now().Add(clientWait)) //nolint:errcheck
	if _, err := io.WriteString(c.c, "GET /slow HTTP/1.1\r\nHost: client.test\r\nX-Stub-Latency: 60s\r\n\r\n"); err != nil {
		t.Fatalf("write the request: %s", err)
	}
	// SIGTERM once the request is at the upstream, which answers it only
	// when it stops; stop it once the gateway is draining, so the request is
	// in flight through the whole start of the shutdown.
	waitFor(t, "the request at the upstream", clientWait, func() bool { return u.stats(t).Get == 1 })
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %s", err)
	}
	waitFor(t, "/readyz 503 while draining", stopTimeout, func() bool {
		return g.admin(t, "GET", "/readyz", "").status == http.StatusServiceUnavailable
	})
	if code := u.stop(); code != 0 {
		t.Fatalf("upstream exit code after SIGTERM got %d; want 0; stderr:\n%s", code, u.stderr.String())
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("in-flight request during shutdown: %s; fastgate stderr:\n%s", err, g.stderr.String())
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("in-flight request during shutdown: got %d %q (%v); want 200 \"ok\"", resp.StatusCode, body, err)
	}
	if code := g.wait(stopTimeout); code != 0 {
		t.Fatalf("fastgate exit code after SIGTERM got %d; want 0; stderr:\n%s", code, g.stderr.String())
	}
}
