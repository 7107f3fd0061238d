package core_test

import (
	"bufio"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
)

// recorder is an upstream that records the requests it receives.
type recorder struct {
	mu   sync.Mutex
	seen []string // each request's head as the upstream got it
}

func (r *recorder) handle(ctx *fasthttp.RequestCtx) {
	r.mu.Lock()
	r.seen = append(r.seen, string(ctx.Request.Header.Header()))
	r.mu.Unlock()
	ctx.WriteString("ok")
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen
	r.seen = nil
	return s
}

func startStrict(t *testing.T, extra string) (*coretest.Gateway, *recorder) {
	t.Helper()
	rec := &recorder{}
	gw := coretest.Start(t, extra+`
upstreams:
  u: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - {upstream: u}
`, core.Options{}, map[string]fasthttp.RequestHandler{"10.0.0.1:80": rec.handle})
	return gw, rec
}

// exchangeRaw writes raw and then a well-formed GET /next on one
// connection, and returns the first response and whether the connection
// carried a second response.
func exchangeRaw(t *testing.T, gw *coretest.Gateway, raw string) (status int, allow string, second bool) {
	t.Helper()
	conn, err := gw.DialFrom("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	if _, err := conn.Write([]byte(raw + "GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var resp fasthttp.Response
	if err := resp.Read(br); err != nil {
		t.Fatalf("%q: reading the response: %s", raw, err)
	}
	rest, _ := io.ReadAll(br)
	return resp.StatusCode(), string(resp.Header.Peek("Allow")), len(rest) > 0
}

// TestStrictRequests: a malformed request is answered 400 (505 for another
// HTTP major version, 501 for CONNECT) and its connection closed, so the
// request pipelined behind it is never read; none reaches the upstream.
func TestStrictRequests(t *testing.T) {
	gw, rec := startStrict(t, "")
	f := func(raw string, want int) {
		t.Helper()
		status, _, second := exchangeRaw(t, gw, raw)
		if status != want || second {
			t.Fatalf("%q: got %d (second response %v); want %d and the connection closed", raw, status, second, want)
		}
		if seen := rec.take(); len(seen) != 0 {
			t.Fatalf("%q: the upstream got %q; want nothing", raw, seen)
		}
	}
	f("GET / HTTP/1.1\nHost: a\n\n", 400)                                                                             // bare LF framing
	f("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400)                                                                 // one bare LF
	f("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400)                                                         // obs-fold
	f("GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n", 400)                                                             // space in a name
	f("GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n", 400)                                                              // space before ':'
	f("GET / HTTP/1.1\r\nHost: a\r\nX(Y: a\r\n\r\n", 400)                                                             // separator in a name
	f("GET / HTTP/1.1\r\nHost: a\r\nX\x01Y: a\r\n\r\n", 400)                                                          // control byte in a name
	f("GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400)                                                          // NUL in a value
	f("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400)                                                                 // bare CR
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc", 400)                                        // not chunked
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400)             // chunked not final
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400)             // a coding the gateway cannot forward
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400) // chunked twice
	f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400)
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400)
	f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400) // differing
	f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400)  // repeated
	f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", 400)
	f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", 400)
	f("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400)
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n", 400) // bare LF in chunks
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n", 400)
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400)
	f("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400)
	f("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505)
	f("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505)
	f("GET /\r\n\r\n", 400)          // no version
	f("GET / HTTP/1.1\r\n\r\n", 400) // no Host
	f("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)
	f("GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n", 400) // absolute form, another host
	f("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400)
	f("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400)
	f("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501)
}

// TestLocalMethods: TRACE is refused with Allow and OPTIONS * answered by
// the gateway, neither forwarded; the connection stays usable.
func TestLocalMethods(t *testing.T) {
	gw, rec := startStrict(t, "")
	f := func(raw string, want int) {
		t.Helper()
		status, allow, second := exchangeRaw(t, gw, raw)
		if status != want || !second || allow != "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" {
			t.Fatalf("%q: got %d, Allow %q, second response %v; want %d, the Allow list and a second response", raw, status, allow, second, want)
		}
		if seen := rec.take(); len(seen) != 1 || !strings.HasPrefix(seen[0], "GET /next ") {
			t.Fatalf("%q: the upstream got %q; want only GET /next", raw, seen)
		}
	}
	f("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405)
	f("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 200)
}

// TestStripRequestHeaders: the strip list, underscore names and the
// headers Connection nominates never reach the upstream, and a client
// cannot make the gateway drop its own X-Request-ID.
func TestStripRequestHeaders(t *testing.T) {
	f := func(extra, raw string, gone, kept []string) {
		t.Helper()
		gw, rec := startStrict(t, extra)
		status, _, _ := exchangeRaw(t, gw, raw)
		seen := rec.take()
		if status != 200 || len(seen) != 2 {
			t.Fatalf("%q: got %d, upstream saw %d requests; want 200 and 2", raw, status, len(seen))
		}
		head := strings.ToLower(seen[0])
		for _, h := range gone {
			if strings.Contains(head, "\n"+strings.ToLower(h)+":") {
				t.Fatalf("%q: the upstream got %s:\n%s", raw, h, seen[0])
			}
		}
		for _, h := range kept {
			if !strings.Contains(head, "\n"+strings.ToLower(h)) {
				t.Fatalf("%q: the upstream did not get %q:\n%s", raw, h, seen[0])
			}
		}
	}
	f("", "GET / HTTP/1.1\r\nHost: a\r\nX-HTTP-Method-Override: DELETE\r\nX-Original-URL: /admin\r\nProxy: http://evil\r\nX-Consumer: admin\r\nX-Consumer-Groups: admins\r\nTrue-Client-IP: 1.2.3.4\r\nX-Keep: 1\r\n\r\n",
		[]string{"X-HTTP-Method-Override", "X-Original-URL", "Proxy", "X-Consumer", "X-Consumer-Groups", "True-Client-IP"}, []string{"X-Keep: 1"})
	f("", "GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nX-Keep: 1\r\n\r\n",
		[]string{"X_Forwarded_For"}, []string{"X-Keep: 1", "X-Forwarded-For: 127.0.0.1"})
	f("server: {underscore_headers: allow}\n", "GET / HTTP/1.1\r\nHost: a\r\nX_Tenant: 7\r\n\r\n",
		nil, []string{"X_tenant: 7"})
	f("server: {strip_request_headers: [X-Internal-*]}\n", "GET / HTTP/1.1\r\nHost: a\r\nX-Internal-Role: admin\r\nX-HTTP-Method-Override: DELETE\r\n\r\n",
		[]string{"X-Internal-Role"}, []string{"X-HTTP-Method-Override: DELETE"})
	f("", "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Request-ID, X-Secret\r\nX-Request-ID: abc\r\nX-Secret: s\r\n\r\n",
		[]string{"X-Secret", "X-Request-ID: abc"}, []string{"X-Request-Id: "})

	gw, _ := startStrict(t, "server: {underscore_headers: reject}\n")
	if status, _, second := exchangeRaw(t, gw, "GET / HTTP/1.1\r\nHost: a\r\nX_Y: 1\r\n\r\n"); status != 400 || second {
		t.Fatalf("underscore_headers: reject: got %d (second response %v); want 400 and the connection closed", status, second)
	}
}
