package core

import (
	"bufio"
	"bytes"
	"context"
	"fastgate/core/config"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// rawUpstream is a fake upstream on a loopback TCP port that speaks raw
// bytes: serve runs once per connection with the connection's index
// (0, 1, ...) and a reader positioned at its first request. Every
// connection's end (the gateway closed it, or serve returned) is sent on
// closed with its index.
type rawUpstream struct {
	ln      net.Listener
	accepts atomic.Int64
	closed  chan int
}

func startRawUpstream(t testing.TB, serve func(i int, c net.Conn, br *bufio.Reader)) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln, closed: make(chan int, 64)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			i := int(u.accepts.Add(1) - 1)
			go func() {
				defer c.Close()
				serve(i, c, bufio.NewReader(c))
				u.closed <- i
			}()
		}
	}()
	return u
}

func (u *rawUpstream) addr() string { return u.ln.Addr().String() }

// readHead reads one request head; false at EOF or on an error.
func readHead(br *bufio.Reader) bool {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" || line == "\n" {
			return true
		}
	}
}

// answerEach answers every request of a keep-alive connection with the
// raw response resp returns.
func answerEach(resp func() string) func(int, net.Conn, *bufio.Reader) {
	return func(_ int, c net.Conn, br *bufio.Reader) {
		for readHead(br) {
			if _, err := c.Write([]byte(resp())); err != nil {
				return
			}
		}
	}
}

// waitEOF reads until the peer closes the connection.
func waitEOF(br *bufio.Reader) { io.Copy(io.Discard, br) } //nolint:errcheck

// recv receives from ch within a generous bound, for events that must
// happen; the bound only keeps a broken build from hanging.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// newRawHarness serves a gateway, reached in memory, in front of the given
// upstream config.
func newRawHarness(t testing.TB, cfg string) (*Gateway, *fasthttp.Client) {
	t.Helper()
	gw, err := New(mustConfig(t, cfg), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gln := fasthttputil.NewInmemoryListener()
	go gw.Serve(gln) //nolint:errcheck
	t.Cleanup(func() { gln.Close(); shutdown(gw) })
	return gw, &fasthttp.Client{Dial: func(string) (net.Conn, error) { return gln.Dial() }, ReadTimeout: 10 * time.Second, MaxIdemponentCallAttempts: 1}
}

func get(t testing.TB, c *fasthttp.Client, uri string) (int, string) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(uri)
	if err := c.Do(req, resp); err != nil {
		t.Fatalf("GET %s: %s", uri, err)
	}
	return resp.StatusCode(), string(resp.Body())
}

// TestMalformedUpstreamResponse: a response that could desynchronize the
// upstream connection or smuggle a second response is a 502, and the
// gateway closes that connection instead of pooling it.
func TestMalformedUpstreamResponse(t *testing.T) {
	f := func(name, raw string) {
		t.Helper()
		up := startRawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
			if !readHead(br) {
				return
			}
			c.Write([]byte(raw)) //nolint:errcheck
			waitEOF(br)          // until the gateway closes it
		})
		_, client := newRawHarness(t, `
upstreams:
  u: {targets: [{url: "http://`+up.addr()+`"}], retries: {attempts: 1}}
routes: [{upstream: u}]
`)
		status, body := get(t, client, "http://gw/x")
		if status != 502 || !strings.Contains(body, "upstream sent an invalid response") {
			t.Fatalf("%s: got %d %s; want 502, upstream sent an invalid response", name, status, body)
		}
		recv(t, up.closed, name+": the gateway closing the upstream connection")
	}
	f("CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	f("duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
	f("differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello")
	f("obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nhi")
	f("NUL in a header", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nhi")
	f("bare CR in a header", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nhi")
	f("bad status line", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nhi")
	f("not HTTP", "SSH-2.0-OpenSSH_9.0\r\n\r\n")
	f("space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nhi")
}

// TestClientDisconnectCancelsUpstream: a client that goes away while its
// request waits on a hanging upstream gets that upstream connection
// closed long before the upstream timeout, and no retry.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	got := make(chan struct{}, 4)
	hang := func(i int, c net.Conn, br *bufio.Reader) {
		if readHead(br) {
			got <- struct{}{}
			waitEOF(br)
		}
	}
	a, b := startRawUpstream(t, hang), startRawUpstream(t, hang)
	gw, c := serveTCP(t, `
upstreams:
  u:
    targets: [{url: "http://`+a.addr()+`"}, {url: "http://`+b.addr()+`"}]
    timeouts: {request: 60s}
    retries: {attempts: 2, on: [timeout, reset, connect_error, 5xx]}
routes: [{upstream: u}]
`, nil)
	recv(t, got, "the request reaching an upstream")
	c.Close()
	start := time.Now()
	var which int
	select {
	case <-a.closed:
		which = 0
	case <-b.closed:
		which = 1
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream connection was not closed after the client went away")
	}
	t.Logf("upstream connection closed %s after the client closed", time.Since(start).Round(time.Millisecond))
	// The request ends as 499 without a retry on the other target.
	waitFor(t, "the request counted as 499 (client closed request)", func() bool {
		return gw.Snapshot().routes[0].metrics.codes.get(methodGet, 499) == 1
	})
	if n := a.accepts.Load() + b.accepts.Load(); n != 1 {
		t.Fatalf("upstream connections: %d; want 1 (no retry after the client went away; first on target %d)", n, which)
	}
	if n := gw.watch.canceled.Load(); n != 1 {
		t.Fatalf("watchdog cancellations: %d; want 1", n)
	}
}

// TestRetryAfterPastDeadline: a 503 whose Retry-After outlasts the
// request's deadline is returned as it is; a short one is retried on the
// other target. retries.on takes a class (5xx) or a bare number (503).
func TestRetryAfterPastDeadline(t *testing.T) {
	f := func(retryAfter, on string, wantRetried bool) {
		t.Helper()
		var okHits atomic.Int64
		busy := startRawUpstream(t, answerEach(func() string {
			return "HTTP/1.1 503 Service Unavailable\r\nRetry-After: " + retryAfter + "\r\nContent-Length: 0\r\n\r\n"
		}))
		fine := startRawUpstream(t, answerEach(func() string {
			okHits.Add(1)
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		}))
		_, client := newRawHarness(t, `
upstreams:
  u:
    targets: [{url: "http://`+busy.addr()+`"}, {url: "http://`+fine.addr()+`"}]
    timeouts: {request: 5s}
    retries: {attempts: 2, on: `+on+`, backoff: {base: 1ms, max: 1ms}}
routes: [{upstream: u}]
`)
		var ok, unavailable int64
		for i := 0; i < 20; i++ {
			switch status, _ := get(t, client, "http://gw/x"); status {
			case 200:
				ok++
			case 503:
				unavailable++
			default:
				t.Fatalf("Retry-After %s: status %d", retryAfter, status)
			}
		}
		if wantRetried && (ok != 20 || okHits.Load() != 20) {
			t.Fatalf("Retry-After %s within the deadline: %d OK, %d 503; want every request retried to 200", retryAfter, ok, unavailable)
		}
		if !wantRetried && (unavailable == 0 || okHits.Load() != ok) {
			t.Fatalf("Retry-After %s past the deadline: %d OK (%d upstream hits), %d 503; want the 503s returned, not retried", retryAfter, ok, okHits.Load(), unavailable)
		}
	}
	f("120", "[5xx]", false)
	f("Fri, 01 Jan 2100 00:00:00 GMT", "[5xx]", false)
	f("1", "[5xx]", true)
	f("garbage", "[5xx]", true)
	f("1", "[503]", true)         // a bare number, as YAML users write it
	f("1", "[reset, 502]", false) // 503 not listed: returned as it is

}

// TestStaleResendCountsAsAttempt: with attempts: 2, a GET that meets a
// stale keep-alive connection is sent once more, as its second and last
// attempt; a failure there is the answer, never a third attempt.
func TestStaleResendCountsAsAttempt(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	up := startRawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
		if !readHead(br) {
			return
		}
		switch i {
		case 0: // answer, then close while the connection idles in the pool
			c.Write([]byte(ok)) //nolint:errcheck
		case 1: // the resend: close without a response
		default:
			c.Write([]byte(ok)) //nolint:errcheck
			waitEOF(br)
		}
	})
	_, client := newRawHarness(t, `
upstreams:
  u: {targets: [{url: "http://`+up.addr()+`"}], retries: {attempts: 2, on: [reset, connect_error]}}
routes: [{upstream: u}]
`)
	if status, _ := get(t, client, "http://gw/x"); status != 200 {
		t.Fatalf("first request: %d; want 200", status)
	}
	recv(t, up.closed, "the upstream closing the first connection")
	if status, body := get(t, client, "http://gw/x"); status != 502 {
		t.Fatalf("stale connection, then a failed resend: %d %s; want 502", status, body)
	}
	if n := up.accepts.Load(); n != 2 {
		t.Fatalf("upstream connections: %d; want 2 (the first, and one resend as the last attempt)", n)
	}
}

// TestStreamedResponsePhases: with a streamed body, After runs before the
// body is written, Done only once the client has it all, and TeeBody sees
// every byte.
func TestStreamedResponsePhases(t *testing.T) {
	release := make(chan struct{})
	up := startRawUpstream(t, func(i int, c net.Conn, br *bufio.Reader) {
		if !readHead(br) {
			return
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")) //nolint:errcheck
		<-release
		c.Write([]byte("6\r\nsecond\r\n0\r\n\r\n")) //nolint:errcheck
		waitEOF(br)
	})
	tee := &teeFilter{done: make(chan struct{}, 1)}
	_, c := serveTCP(t, `
upstreams:
  u: {targets: [{url: "http://`+up.addr()+`"}]}
routes: [{upstream: u}]
`, []FilterBuilder{teeBuilder{tee}})
	br := bufio.NewReader(c)
	var head bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	if !strings.Contains(head.String(), "X-After: 1") {
		t.Fatalf("After's header missing from the streamed response head:\n%s", head.String())
	}
	if tee.finished.Load() != 0 {
		t.Fatal("Done ran before the streamed body was written")
	}
	close(release)
	recv(t, tee.done, "Done after the body")
	if got := tee.body(); got != "firstsecond" || tee.err.Load() != nil {
		t.Fatalf("teed body %q, BodyErr %v; want \"firstsecond\", nil", got, tee.err.Load())
	}
}

// teeFilter tees every streamed body and reports Done.
type teeFilter struct {
	buf      atomic.Pointer[bytes.Buffer]
	finished atomic.Int64
	err      atomic.Pointer[error]
	done     chan struct{}
}

func (f *teeFilter) Filter(ctx *fasthttp.RequestCtx, r *Request) bool { return true }

func (f *teeFilter) After(ctx *fasthttp.RequestCtx, r *Request) {
	ctx.Response.Header.Set("X-After", "1")
	b := &bytes.Buffer{}
	f.buf.Store(b)
	r.TeeBody(b)
}

func (f *teeFilter) Done(ctx *fasthttp.RequestCtx, r *Request) {
	if err := r.BodyErr(); err != nil {
		f.err.Store(&err)
	}
	f.finished.Add(1)
	f.done <- struct{}{}
}

func (f *teeFilter) body() string { return f.buf.Load().String() }

type teeBuilder struct{ f *teeFilter }

func (b teeBuilder) Key(*config.Config, *config.Route) any { return true }
func (b teeBuilder) Validate(*Env) error                   { return nil }
func (b teeBuilder) Build(*Env) (Filter, error)            { return b.f, nil }

func shutdown(gw *Gateway) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gw.Shutdown(ctx) //nolint:errcheck
}

// get returns the count of (method bit, status); 0 when never counted.
func (cc *codeCounters) get(method uint16, status int) uint64 {
	key := uint32(methodIndex(method))<<16 | uint32(uint16(status))
	if l := cc.list.Load(); l != nil {
		for _, e := range *l {
			if e.key == key {
				return e.c.Get()
			}
		}
	}
	return 0
}

// serveTCP serves cfg with filters on a loopback TCP listener (the
// watchdog needs a real client socket) and returns a connection to it on
// which a GET /x has been sent.
func serveTCP(t *testing.T, cfg string, filters []FilterBuilder) (*Gateway, net.Conn) {
	t.Helper()
	gw, err := New(mustConfig(t, cfg), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Filters: filters})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { shutdown(gw) })
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Write([]byte("GET /x HTTP/1.1\r\nHost: gw\r\n\r\n")) //nolint:errcheck
	return gw, c
}
