package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// tcpHarness runs the gateway (reached in memory) in front of a real
// loopback TCP upstream, so the upstream exchange goes through send's
// write-then-wait path.
type tcpHarness struct {
	gw     *Gateway
	client *fasthttp.Client
	addr   string // the gateway's listener
	hits   atomic.Int64
}

func newTCPHarness(t testing.TB, handler fasthttp.RequestHandler, routeExtra string) *tcpHarness {
	t.Helper()
	return newTCPHarnessTop(t, handler, routeExtra, "")
}

// newTCPHarnessTop is newTCPHarness with top (server settings, say) at the
// head of the config.
func newTCPHarnessTop(t testing.TB, handler fasthttp.RequestHandler, routeExtra, top string) *tcpHarness {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &tcpHarness{}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { h.hits.Add(1); handler(ctx) }, Logger: quiet{}}
	go up.Serve(ln)                     //nolint:errcheck
	t.Cleanup(func() { up.Shutdown() }) //nolint:errcheck
	cfg := mustConfig(t, top+`
upstreams:
  u: {targets: [{url: "http://`+ln.Addr().String()+`"}], timeouts: {per_try: 300ms}, retries: {attempts: 1}}
routes: [{upstream: u`+routeExtra+`}]
`)
	gw, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h.gw = gw
	gln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gw.Serve(gln) //nolint:errcheck
	t.Cleanup(func() { gln.Close(); shutdown(gw) })
	addr := gln.Addr().String()
	h.addr = addr
	h.client = &fasthttp.Client{Dial: func(string) (net.Conn, error) { return net.Dial("tcp4", addr) }, ReadTimeout: 5 * time.Second}
	return h
}

func (h *tcpHarness) do(t testing.TB, method string, body []byte, headers ...string) *fasthttp.Response {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://gw.local/x")
	req.Header.SetMethod(method)
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	req.SetBody(body)
	resp := fasthttp.AcquireResponse()
	if err := h.client.Do(req, resp); err != nil {
		t.Fatalf("%s: %s", method, err)
	}
	return resp
}

// TestSendOverTCP covers send on a real connection: small and large
// requests (the bufio path above maxRawRequest), a kept-alive connection
// reused many times, and the per-try deadline while waiting.
func TestSendOverTCP(t *testing.T) {
	h := newTCPHarness(t, func(ctx *fasthttp.RequestCtx) {
		if len(ctx.Request.Header.Peek("X-Hang")) > 0 {
			time.Sleep(time.Second)
		}
		ctx.SetBody(ctx.PostBody())
	}, "")
	f := func(method string, size int, want int, headers ...string) {
		t.Helper()
		body := bytes.Repeat([]byte("b"), size)
		resp := h.do(t, method, body, headers...)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != want {
			t.Fatalf("%s %d bytes: status %d; want %d: %s", method, size, resp.StatusCode(), want, resp.Body())
		}
		if want == 200 && !bytes.Equal(resp.Body(), body) {
			t.Fatalf("%s %d bytes: echoed %d bytes; want the same body", method, size, len(resp.Body()))
		}
	}
	for i := 0; i < 50; i++ {
		f("GET", 0, 200)
	}
	f("POST", 1000, 200)
	f("POST", maxRawRequest, 200)
	f("POST", maxRawRequest+1, 200) // bufio path
	f("POST", 1<<20, 200)
	f("GET", 0, 504, "X-Hang: 1") // per_try 300ms while waiting for the response
	f("GET", 0, 200)              // and the next request is fine
}

// TestSetDeadlineKeeps checks the deadline bookkeeping: a deadline within
// the slack is kept, a shorter or much later one is set, and a deadline set
// by anyone else is forgotten.
func TestSetDeadlineKeeps(t *testing.T) {
	c, _ := rawPair(t)
	now := time.Now()
	f := func(d time.Duration, want time.Time) {
		t.Helper()
		if err := setDeadline(c, now, now.Add(d)); err != nil {
			t.Fatal(err)
		}
		if !c.deadline.Equal(want) {
			t.Fatalf("after asking now+%s: deadline now+%s; want now+%s", d, c.deadline.Sub(now), want.Sub(now))
		}
	}
	f(30*time.Second, now.Add(30*time.Second+maxDeadlineSlack))                          // set, with slack
	f(30*time.Second+50*time.Millisecond, now.Add(30*time.Second+maxDeadlineSlack))      // within: kept
	f(30*time.Second+200*time.Millisecond, now.Add(30*time.Second+300*time.Millisecond)) // later: set
	f(time.Second, now.Add(time.Second+time.Second/16))                                  // shorter: set, slack 1/16
	c.SetReadDeadline(now.Add(time.Hour))                                                //nolint:errcheck
	if !c.deadline.IsZero() {
		t.Fatal("a deadline set by someone else was not forgotten")
	}
	f(time.Second, now.Add(time.Second+time.Second/16))
}

// rawPair dials a rawTCPConn to a loopback listener whose sockets have a
// small receive buffer, and returns it with the accepted end.
func rawPair(t *testing.T) (*rawTCPConn, *net.TCPConn) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := dialRaw(&fasthttp.TCPDialer{}, ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return conn.(*rawTCPConn), srv.(*net.TCPConn)
}

// TestSendLeftPartial: a request the socket takes only in part is written
// whole the usual way, and the same Read then returns the response.
func TestSendLeftPartial(t *testing.T) {
	c, srv := rawPair(t)
	partial := make(chan struct{})
	testHookSendPartial = func() { close(partial) }
	t.Cleanup(func() { testHookSendPartial = nil })

	const size = 16 << 20 // far more than the socket buffers hold
	s := rawSendPool.Get().(*rawSend)
	s.buf = append(s.buf[:0], bytes.Repeat([]byte("r"), size)...)
	c.out = s
	got := make(chan error, 1)
	go func() {
		<-partial // the client's write stopped at EAGAIN before anything was read
		n, err := io.CopyN(io.Discard, srv, size)
		if err == nil {
			_, err = srv.Write([]byte("response"))
		}
		if err != nil {
			err = fmt.Errorf("upstream read %d bytes: %w", n, err)
		}
		got <- err
	}()
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "response" {
		t.Fatalf("Read: %q; want %q", buf[:n], "response")
	}
	if c.out != nil || sendError(c) != nil {
		t.Fatalf("after the write: out %v, sendError %v; want neither", c.out, sendError(c))
	}
}

// TestSendLeftFails: a request written to a connection the upstream reset
// fails that Read and every later one with the write's error, which
// sendError reports.
func TestSendLeftFails(t *testing.T) {
	c, srv := rawPair(t)
	srv.SetLinger(0) //nolint:errcheck
	srv.Close()      // an RST: on loopback it has reached c when Close returns
	s := rawSendPool.Get().(*rawSend)
	s.buf = append(s.buf[:0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n"...)
	c.out = s
	buf := make([]byte, 64)
	_, err := c.Read(buf)
	if err == nil || !isReset(err) {
		t.Fatalf("Read: %v; want a reset", err)
	}
	if werr := sendError(c); werr != err {
		t.Fatalf("sendError: %v; want %v", werr, err)
	}
	if _, err2 := c.Read(buf); err2 != err {
		t.Fatalf("second Read: %v; want %v again", err2, err)
	}
}
