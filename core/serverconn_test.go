package core

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serveWaitFirst serves h on a loopback TCP listener through
// waitFirstListener, as Gateway.Serve does; every response is offered to
// holdResponse, as the gateway's handler does. wrap, when set, wraps the
// inner listener (to shrink socket buffers).
func serveWaitFirst(t *testing.T, srv *fasthttp.Server, h fasthttp.RequestHandler, wrap func(net.Listener) net.Listener) string {
	return serveListener(t, srv, h, wrap, nil)
}

// serveListener is serveWaitFirst with the listener's park set (nil: no
// parking).
func serveListener(t *testing.T, srv *fasthttp.Server, h fasthttp.RequestHandler, wrap func(net.Listener) net.Listener, parks *parkSet) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inner := ln
	if wrap != nil {
		inner = wrap(ln)
	}
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		h(ctx)
		holdResponse(ctx)
	}
	srv.Logger = quiet{}
	done := make(chan struct{})
	idleFor := srv.IdleTimeout
	if idleFor <= 0 {
		idleFor = srv.ReadTimeout
	}
	l := waitFirstListener{Listener: inner, idleFor: idleFor, parks: parks, maxRequests: srv.MaxRequestsPerConn}
	go func() { srv.Serve(l); close(done) }() //nolint:errcheck
	t.Cleanup(func() {
		if parks != nil {
			parks.close()
		}
		srv.Shutdown() //nolint:errcheck
		<-done
	})
	return ln.Addr().String()
}

// setWaitProbe sets waitProbe for one test.
func setWaitProbe(t testing.TB, d time.Duration) {
	old := waitProbe
	waitProbe = d
	t.Cleanup(func() { waitProbe = old })
}

// rawClient is one client connection that writes requests and reads
// responses itself, so tests can pipeline and interleave.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRawClient(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Bounds every read of the test, so a lost response fails it instead
	// of hanging it.
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	return &rawClient{t: t, conn: c, br: bufio.NewReader(c)}
}

func (c *rawClient) send(method, uri string, body []byte) {
	c.t.Helper()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", method, uri, len(body))
	if _, err := c.conn.Write(append([]byte(req), body...)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) recv() (int, []byte) {
	c.t.Helper()
	var resp fasthttp.Response
	if err := resp.Read(c.br); err != nil {
		c.t.Fatalf("reading a response: %v", err)
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...)
}

// sizedBody answers /size/N with N bytes, /echo with the request body.
func sizedBody(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	if rest, ok := strings.CutPrefix(path, "/size/"); ok {
		n, _ := strconv.Atoi(rest)
		ctx.SetBody(bytes.Repeat([]byte{'a' + byte(n%26)}, n))
		return
	}
	ctx.SetBody(ctx.Request.Body())
}

// TestServerConnWaitsFirst runs keep-alive requests of every size through
// one connection: each after the first is read by the wait that wrote the
// previous response, and every response arrives whole.
func TestServerConnWaitsFirst(t *testing.T) {
	addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/waits" {
			ctx.SetBodyString(strconv.Itoa(ctx.Conn().(*serverConn).waits))
			return
		}
		sizedBody(ctx)
	}, nil)
	c := dialRawClient(t, addr)
	sizes := []int{0, 1, 100, 4000, 4097, 16 << 10, maxHeldResponse - 200, maxHeldResponse, 100 << 10, 1 << 20, 100}
	n := 0
	for round := 0; round < 3; round++ {
		for _, size := range sizes {
			c.send("GET", "/size/"+strconv.Itoa(size), nil)
			status, body := c.recv()
			if status != 200 || len(body) != size || size > 0 && body[size-1] != 'a'+byte(size%26) {
				t.Fatalf("GET /size/%d: status %d, %d bytes", size, status, len(body))
			}
			n++
		}
		post := bytes.Repeat([]byte("p"), 1000+round)
		c.send("POST", "/echo", post)
		if status, body := c.recv(); status != 200 || !bytes.Equal(body, post) {
			t.Fatalf("POST /echo: status %d, %d bytes", status, len(body))
		}
		n++
	}
	c.send("GET", "/waits", nil)
	_, body := c.recv()
	waits, _ := strconv.Atoi(string(body))
	// Responses over maxHeldResponse are written at once, and the reads
	// after them are plain ones.
	large := 0
	for _, size := range sizes {
		if size > maxHeldResponse-200 {
			large++
		}
	}
	if want := n - 3*large; waits < want {
		t.Fatalf("%d of %d requests read by the write-then-wait; want at least %d", waits, n, want)
	}
	t.Logf("%d of %d requests read by the write-then-wait", waits, n+1)
}

// TestServerConnPipelined sends the next request while the handler of the
// previous one runs, the one case where the wait can miss readiness: the
// probe finds it, and both responses arrive in order.
func TestServerConnPipelined(t *testing.T) {
	setWaitProbe(t, 20*time.Millisecond)
	entered, release := make(chan struct{}), make(chan struct{})
	addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			entered <- struct{}{}
			<-release
		}
		ctx.SetBodyString(string(ctx.Path()))
	}, nil)
	c := dialRawClient(t, addr)
	for i := 0; i < 20; i++ {
		c.send("GET", "/slow", nil)
		<-entered
		c.send("GET", "/next", nil)
		release <- struct{}{}
		if _, body := c.recv(); string(body) != "/slow" {
			t.Fatalf("round %d: first response %q; want /slow", i, body)
		}
		if _, body := c.recv(); string(body) != "/next" {
			t.Fatalf("round %d: second response %q; want /next", i, body)
		}
	}
	// Both requests written at once: fasthttp answers the second from its
	// buffer.
	for i := 0; i < 5; i++ {
		c.send("GET", "/a", nil)
		c.send("GET", "/b", nil)
		if _, body := c.recv(); string(body) != "/a" {
			t.Fatalf("got %q; want /a", body)
		}
		if _, body := c.recv(); string(body) != "/b" {
			t.Fatalf("got %q; want /b", body)
		}
	}
}

// TestServerConnStreamNotHeld: a streamed body reaches the client as it is
// written, never held for the next read.
func TestServerConnStreamNotHeld(t *testing.T) {
	got := make(chan struct{})
	addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/stream" {
			ctx.SetBodyString("plain")
			return
		}
		ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
			w.WriteString("event: one\n\n") //nolint:errcheck
			w.Flush()                       //nolint:errcheck
			<-got                           // the client read the first event
			w.WriteString("event: two\n\n") //nolint:errcheck
		})
	}, nil)
	c := dialRawClient(t, addr)
	c.send("GET", "/plain", nil) // a held response first
	c.recv()
	c.send("GET", "/stream", nil)
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if line == "event: one\n" {
			break
		}
	}
	close(got)
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		if line == "event: two\n" {
			break
		}
	}
}

// smallBufListener shrinks each accepted connection's send buffer, so a
// held response does not fit the socket at once.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096) //nolint:errcheck
	}
	return c, err
}

// partialWrites sets testHookPartial for the test: the channel gets a value
// when a held response did not fit the socket whole.
func partialWrites(t *testing.T) <-chan struct{} {
	partial := make(chan struct{}, 1)
	testHookPartial = func() {
		select {
		case partial <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() { testHookPartial = nil })
	return partial
}

// TestServerConnPartialWrite: a held response the socket takes only in
// part is finished the usual way, and the next request is read after it.
// The client reads nothing until the write was partial (testHookPartial),
// so with small socket buffers it always is.
func TestServerConnPartialWrite(t *testing.T) {
	partial := partialWrites(t)
	addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, sizedBody,
		func(ln net.Listener) net.Listener { return smallBufListener{ln} })
	c := dialRawClient(t, addr)
	c.conn.(*net.TCPConn).SetReadBuffer(4096) //nolint:errcheck
	c.send("GET", "/size/1", nil)             // the connection's first read is a plain one
	c.recv()
	size := maxHeldResponse - 300
	c.send("GET", "/size/"+strconv.Itoa(size), nil)
	c.recv() // held: written by the read that waits for the next request
	c.send("GET", "/size/"+strconv.Itoa(size), nil)
	select {
	case <-partial:
	case <-time.After(10 * time.Second):
		t.Fatal("the held response fit the socket whole; the test's socket buffers are too large")
	}
	if status, body := c.recv(); status != 200 || len(body) != size {
		t.Fatalf("after a partial write: status %d, %d bytes", status, len(body))
	}
	c.send("GET", "/size/7", nil)
	if _, body := c.recv(); len(body) != 7 {
		t.Fatalf("the request after: %d bytes; want 7", len(body))
	}
}

// TestServerConnIdleTimeout: the idle timeout still closes a connection
// whose last response was held, both when it is shorter than the probe and
// when the probe expires first.
func TestServerConnIdleTimeout(t *testing.T) {
	for _, probe := range []time.Duration{time.Second, time.Millisecond} {
		t.Run(probe.String(), func(t *testing.T) {
			setWaitProbe(t, probe)
			addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 100 * time.Millisecond}, sizedBody, nil)
			c := dialRawClient(t, addr)
			c.send("GET", "/size/10", nil)
			c.recv()
			if n, err := c.br.ReadByte(); err != io.EOF {
				t.Fatalf("after the idle timeout: read %v, %v; want EOF", n, err)
			}
		})
	}
}

// TestServerConnProbeExpires: with a probe that expires at once, the wait
// ends in a plain read every time and requests still flow.
func TestServerConnProbeExpires(t *testing.T) {
	setWaitProbe(t, time.Nanosecond)
	addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, sizedBody, nil)
	c := dialRawClient(t, addr)
	for i := 0; i < 50; i++ {
		c.send("GET", "/size/"+strconv.Itoa(i), nil)
		if _, body := c.recv(); len(body) != i {
			t.Fatalf("got %d bytes; want %d", len(body), i)
		}
		// The socket's read deadline is the expired probe: the body's
		// reads fail at once and are retried under the asked deadline.
		post := bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10+i)
		c.send("POST", "/echo", post)
		if _, body := c.recv(); !bytes.Equal(body, post) {
			t.Fatalf("POST echo: got %d bytes; want %d", len(body), len(post))
		}
	}
}

// TestServerConnReadTimeout: ReadTimeout still ends a request whose rest
// never comes, though the socket's deadline is set lazily.
func TestServerConnReadTimeout(t *testing.T) {
	addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 200 * time.Millisecond, IdleTimeout: 10 * time.Second}, sizedBody, nil)
	c := dialRawClient(t, addr)
	for i := 0; i < 3; i++ {
		c.send("GET", "/size/5", nil)
		c.recv()
	}
	if _, err := c.conn.Write([]byte("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c.br)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the read timeout: %v; want the connection closed", err)
	}
	if bytes.Contains(b, []byte("abc")) {
		t.Fatalf("the incomplete request was answered: %q", b)
	}
}

// TestServerConnWriteTimeout: WriteTimeout still ends a response the
// client does not read, though the socket's deadline is set lazily.
func TestServerConnWriteTimeout(t *testing.T) {
	addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, WriteTimeout: 200 * time.Millisecond, IdleTimeout: 10 * time.Second}, sizedBody,
		func(ln net.Listener) net.Listener { return smallBufListener{ln} })
	c := dialRawClient(t, addr)
	c.conn.(*net.TCPConn).SetReadBuffer(4096) //nolint:errcheck
	c.send("GET", "/size/5", nil)             // sets the socket's write deadline
	c.recv()
	const size = 8 << 20
	c.send("GET", "/size/"+strconv.Itoa(size), nil)
	// Read nothing until the server has given up: its close shows as
	// the end of the stream once the buffers are drained.
	b, err := io.ReadAll(c.br)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the write timeout: %v; want the connection closed", err)
	}
	if len(b) >= size {
		t.Fatalf("read %d bytes; want the response cut short by the write timeout", len(b))
	}
}

// TestServerConnCloseWritesHeld: Close (fasthttp's after Connection: close,
// or Shutdown's on an idle connection) sends the held response first.
func TestServerConnCloseWritesHeld(t *testing.T) {
	addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString("last")
		ctx.SetConnectionClose()
	}, nil)
	c := dialRawClient(t, addr)
	c.send("GET", "/", nil)
	if _, body := c.recv(); string(body) != "last" {
		t.Fatalf("got %q; want last", body)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close: %v; want EOF", err)
	}

	// A last response larger than the socket takes at once: the close waits
	// for room for the rest (the client reads only once the write was
	// partial), and the client gets all of it, then the end.
	partial := partialWrites(t)
	size := maxHeldResponse - 300
	addr = serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, func(ctx *fasthttp.RequestCtx) {
		sizedBody(ctx)
		if len(ctx.Response.Body()) > 1 {
			ctx.SetConnectionClose()
		}
	}, func(ln net.Listener) net.Listener { return smallBufListener{ln} })
	c = dialRawClient(t, addr)
	c.conn.(*net.TCPConn).SetReadBuffer(4096) //nolint:errcheck
	c.send("GET", "/size/1", nil)             // the small buffers apply from the next exchange
	c.recv()
	c.send("GET", "/size/"+strconv.Itoa(size), nil)
	select {
	case <-partial:
	case <-time.After(10 * time.Second):
		t.Fatal("the last response fit the socket whole; the test's socket buffers are too large")
	}
	if status, body := c.recv(); status != 200 || len(body) != size || body[size-1] != byte('a'+size%26) {
		t.Fatalf("the last response after a partial write: status %d, %d bytes; want 200 and %d", status, len(body), size)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("after the last response: %v; want EOF", err)
	}

	// Close from another goroutine while a response is held and the
	// wait is armed.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := waitFirstListener{Listener: ln, idleFor: time.Minute}.Accept()
		accepted <- c
	}()
	client := dialRawClient(t, ln.Addr().String())
	sc := (<-accepted).(*serverConn)
	sc.holdNext = true
	sc.Write([]byte("held"))                             //nolint:errcheck
	sc.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	// The Read reads waitProbe: it must end before this test does, or a
	// later test's setWaitProbe races with it.
	readDone := make(chan struct{})
	go func() { sc.Read(make([]byte, 10)); close(readDone) }() //nolint:errcheck
	sc.Close()                                                 //nolint:errcheck
	if b, err := io.ReadAll(client.br); string(b) != "held" {  //nolint:errcheck
		t.Fatalf("after Close: read %q, %v; want held", b, err)
	}
	<-readDone
}

// TestServerConnHijack: a hijacked connection gets the held response
// first and then carries raw bytes both ways.
func TestServerConnHijack(t *testing.T) {
	addr := serveWaitFirst(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/upgrade" {
			ctx.SetBodyString("plain")
			return
		}
		ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
		ctx.Response.Header.Set("Upgrade", "echo")
		ctx.Response.Header.Set("Connection", "Upgrade")
		ctx.Response.SkipBody = true
		ctx.Hijack(func(c net.Conn) {
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("echo " + line)) //nolint:errcheck
		})
	}, nil)
	c := dialRawClient(t, addr)
	c.send("GET", "/plain", nil)
	c.recv()
	if _, err := c.conn.Write([]byte("GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	resp.SkipBody = true
	if err := resp.Header.Read(c.br); err != nil || resp.StatusCode() != 101 {
		t.Fatalf("upgrade: %d, %v", resp.StatusCode(), err)
	}
	c.conn.Write([]byte("hello\n")) //nolint:errcheck
	if line, err := c.br.ReadString('\n'); line != "echo hello\n" {
		t.Fatalf("after the hijack: %q, %v", line, err)
	}
}

// TestGatewayPipelined: through the gateway, with a real upstream, a
// client that sends its next request while the previous one is upstream
// gets both answers in order (the probe finds the request the wait could
// miss), and requests written together are answered together. The probe
// is the park time (a second): it reads the waiting request rather than
// parking a connection that has one, and the connection then reads
// without waiting for good, so it never parks.
func TestGatewayPipelined(t *testing.T) {
	setWaitProbe(t, 20*time.Millisecond)
	parked := setHookChan(t, &testHookParked, 64)
	entered, release := make(chan struct{}), make(chan struct{})
	h := newTCPHarness(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			entered <- struct{}{}
			<-release
		}
		ctx.SetBodyString("up:" + string(ctx.Path()))
	}, "")
	c := dialRawClient(t, h.addr)
	for i := 0; i < 10; i++ {
		c.send("GET", "/slow", nil)
		<-entered
		c.send("GET", "/next", nil)
		release <- struct{}{}
		if status, body := c.recv(); status != 200 || string(body) != "up:/slow" {
			t.Fatalf("round %d: first response %d %q; want 200 up:/slow", i, status, body)
		}
		if status, body := c.recv(); status != 200 || string(body) != "up:/next" {
			t.Fatalf("round %d: second response %d %q; want 200 up:/next", i, status, body)
		}
	}
	for i := 0; i < 5; i++ {
		c.send("GET", "/a", nil)
		c.send("POST", "/b", []byte("body"))
		c.send("GET", "/c", nil)
		for _, want := range []string{"up:/a", "up:/b", "up:/c"} {
			if status, body := c.recv(); status != 200 || string(body) != want {
				t.Fatalf("pipelined: got %d %q; want 200 %s", status, body, want)
			}
		}
	}
	if n := len(parked); n != 0 {
		t.Fatalf("the pipelining connection parked %d times; want 0 (the probe finds its next request)", n)
	}
}
