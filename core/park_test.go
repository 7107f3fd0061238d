package core

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// setParkHooks sets parkAfter and the park hooks for one test, before its
// server starts; parked and unparked get a value per event.
func setParkHooks(t *testing.T, after time.Duration) (parked, unparked chan struct{}) {
	t.Helper()
	setWaitProbe(t, 5*time.Millisecond) // a held response's wait probes first
	oldAfter := parkAfter
	parkAfter = after
	t.Cleanup(func() { parkAfter = oldAfter })
	return setHookChan(t, &testHookParked, 64), setHookChan(t, &testHookUnparked, 64)
}

// setHookChan sets *hook, for one test, to send on the channel it
// returns (room for n values), and restores it after.
func setHookChan(t *testing.T, hook *func(), n int) chan struct{} {
	t.Helper()
	ch := make(chan struct{}, n)
	old := *hook
	*hook = func() { ch <- struct{}{} }
	t.Cleanup(func() { *hook = old })
	return ch
}

// setParkClosedHook returns a channel that gets a value each time the
// park set closes a connection, for one test.
func setParkClosedHook(t *testing.T, n int) chan struct{} {
	return setHookChan(t, &testHookParkClosed, n)
}

// waitEvent waits for one value of ch; the bound only turns a hang into a
// failure.
func waitEvent(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s", what)
	}
}

// parkedClient serves sizedBody with parking after a millisecond and the
// idle timeout idle, and returns a client connection parked after one GET,
// the park set, and the park and unpark hooks' channels.
func parkedClient(t *testing.T, idle time.Duration) (c *rawClient, ps *parkSet, parked, unparked chan struct{}) {
	t.Helper()
	parked, unparked = setParkHooks(t, time.Millisecond)
	addr, ps := serveParking(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: idle}, sizedBody)
	c = dialRawClient(t, addr)
	c.send("GET", "/size/10", nil)
	c.recv()
	waitEvent(t, parked, "park")
	return c, ps, parked, unparked
}

// serveParking serves h as the gateway does, with parking, and returns
// the address and the park set.
func serveParking(t *testing.T, srv *fasthttp.Server, h fasthttp.RequestHandler) (string, *parkSet) {
	t.Helper()
	return serveParkingWrapped(t, srv, h, nil)
}

// serveParkingWrapped is serveParking with the listener wrapped (TLS).
func serveParkingWrapped(t *testing.T, srv *fasthttp.Server, h fasthttp.RequestHandler, wrap func(net.Listener) net.Listener) (string, *parkSet) {
	t.Helper()
	srv.ConnState = connState
	ps := newParkSet(srv.ServeConn)
	return serveListener(t, srv, h, wrap, ps), ps
}

// dialTLSClient dials addr over TLS, trusting pki.
func dialTLSClient(t *testing.T, addr string, pki *testPKI) *rawClient {
	t.Helper()
	c, err := tls.Dial("tcp4", addr, &tls.Config{RootCAs: pki.pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
	return &rawClient{t: t, conn: c, br: bufio.NewReader(c)}
}

// TestIdleConnParks: a keep-alive connection idle for parkAfter leaves
// fasthttp's loop and is served again, as a new connection, when its
// next request comes: held and written-at-once responses, a POST body,
// and several rounds on one connection.
func TestIdleConnParks(t *testing.T) {
	parked, unparked := setParkHooks(t, time.Millisecond)
	addr, ps := serveParking(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, sizedBody)
	parkRounds(t, dialRawClient(t, addr), ps, parked, unparked, []int{10, 100 << 10, 1000, 70 << 10, 0}, 5000, "serverConn")
}

// parkRounds runs, on c, a round per size: a GET of that size (which
// unparks after the first round), a park, a POST of postSize that
// unparks, a park, a small GET that unparks, a park. Every event is waited
// for in turn, so that each check sees the park it follows. While parked,
// the connection is ps's only one, and no goroutine is in the code of its
// type (serverConn, tlsServerConn).
func parkRounds(t *testing.T, c *rawClient, ps *parkSet, parked, unparked chan struct{}, sizes []int, postSize int, connType string) {
	t.Helper()
	for i, size := range sizes {
		c.send("GET", "/size/"+strconv.Itoa(size), nil)
		if status, body := c.recv(); status != 200 || len(body) != size {
			t.Fatalf("round %d: GET /size/%d: %d, %d bytes", i, size, status, len(body))
		}
		if i > 0 {
			waitEvent(t, unparked, "unpark")
		}
		waitEvent(t, parked, "park after an idle wait")
		if n := ps.len(); n != 1 {
			t.Fatalf("round %d: %d connections parked; want 1", i, n)
		}
		if g := goroutinesIn("fastgate/core.(*" + connType + ")"); g != 0 {
			t.Fatalf("round %d: %d goroutines in %s code with the connection parked; want 0", i, g, connType)
		}
		post := bytes.Repeat([]byte{'a' + byte(i)}, postSize)
		c.send("POST", "/echo", post)
		if status, body := c.recv(); status != 200 || !bytes.Equal(body, post) {
			t.Fatalf("round %d: POST after the park: %d, %d bytes", i, status, len(body))
		}
		waitEvent(t, unparked, "unpark")
		waitEvent(t, parked, "park after the POST")
		c.send("GET", "/size/7", nil)
		if status, body := c.recv(); status != 200 || len(body) != 7 {
			t.Fatalf("round %d: GET /size/7: %d, %d bytes", i, status, len(body))
		}
		waitEvent(t, unparked, "unpark")
		waitEvent(t, parked, "park after the small GET")
	}
}

// TestUnparkWorkerReused: a connection unparked again and again is served
// by the same unpark worker each time, one that went idle after serving
// it before, not by a new goroutine per unpark.
func TestUnparkWorkerReused(t *testing.T) {
	idle := setHookChan(t, &testHookUnparkIdle, 64)
	c, _, parked, unparked := parkedClient(t, 10*time.Second)
	for i := range 5 {
		c.send("GET", "/size/"+strconv.Itoa(i), nil)
		if status, body := c.recv(); status != 200 || len(body) != i {
			t.Fatalf("round %d: %d, %d bytes", i, status, len(body))
		}
		waitEvent(t, unparked, "unpark")
		waitEvent(t, parked, "park")
		waitEvent(t, idle, "an idle unpark worker")
		if g := goroutinesIn("fastgate/core.(*parkSet).unparkWorker"); g != 1 {
			t.Fatalf("round %d: %d unpark workers; want the one, reused", i, g)
		}
	}
}

// TestParkedLastRequest: the next request of a parked connection is served
// whether it comes alone (the events say only readable: no peek) or with
// the client's FIN right behind it (readable and hung up: the peek finds
// the request, which is served before the close). Clients that close
// while parked: TestManyParkedConnections.
func TestParkedLastRequest(t *testing.T) {
	c, _, parked, unparked := parkedClient(t, 10*time.Second)
	c.send("GET", "/size/11", nil)
	if status, body := c.recv(); status != 200 || len(body) != 11 {
		t.Fatalf("the request that unparked: %d, %d bytes", status, len(body))
	}
	waitEvent(t, unparked, "unpark")
	waitEvent(t, parked, "park again")
	c.send("GET", "/size/12", nil)
	c.conn.(*net.TCPConn).CloseWrite() //nolint:errcheck // the FIN right behind the request
	if status, body := c.recv(); status != 200 || len(body) != 12 {
		t.Fatalf("a last request with the FIN behind it: %d, %d bytes", status, len(body))
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("after the last response: %v; want the server's close", err)
	}
	for _, ev := range []struct {
		events uint32
		want   bool
	}{
		{syscall.EPOLLIN, true},
		{syscall.EPOLLIN | syscall.EPOLLRDHUP, false},
		{syscall.EPOLLIN | syscall.EPOLLHUP, false},
		{syscall.EPOLLERR, false},
		{syscall.EPOLLRDHUP, false},
	} {
		if got := dataOnly(ev.events); got != ev.want {
			t.Errorf("dataOnly(%#x) = %v; want %v", ev.events, got, ev.want)
		}
	}
}

// TestParkTick: park times are rounded up to a quarter of parkAfter on the
// clock, never earlier than asked, so that connections idle since about
// the same time park together; the monotonic reading stays.
func TestParkTick(t *testing.T) {
	q := parkAfter / 4
	base := time.Now()
	for _, off := range []time.Duration{0, time.Nanosecond, 7 * time.Millisecond, q - 1, q, q + 1, 3*q + 11} {
		in := base.Add(off)
		got := parkTick(in)
		if got.Before(in) || got.Sub(in) >= q {
			t.Fatalf("parkTick(base+%v) = base+%v; want within a quarter after", off, got.Sub(base))
		}
		if got.UnixNano()%int64(q) != 0 {
			t.Fatalf("parkTick(base+%v) = %v, not on a quarter", off, got)
		}
		if got.String() == got.Round(0).String() {
			t.Fatalf("parkTick(base+%v) lost the monotonic reading", off)
		}
	}
	// Two connections idle within one quarter park at the same instant.
	start := parkTick(base)
	if a, b := parkTick(start.Add(time.Millisecond)), parkTick(start.Add(q-time.Millisecond)); !a.Equal(b) {
		t.Fatalf("idle 1 ms and %v after a quarter's start: parks at %v and %v; want the same", q-time.Millisecond, a, b)
	}
}

// TestParkDelay: a connection whose client came back less than
// parkDelaySlow times parkAfter after its previous request waits that long
// before it parks next, while its client keeps that pace; one whose client
// stayed away longer goes back to parkAfter (the rule, on a made-up clock).
func TestParkDelay(t *testing.T) {
	var c parker
	t0 := time.Now()
	steps := []struct {
		parked, back time.Duration // parked at t0+parked, back after back
		slow         bool
	}{
		{0, parkAfter * 3 / 10, true},               // a request every 1.3 parkAfter
		{2 * parkAfter, parkAfter / 2, false},       // 4.5 parkAfter after its previous request
		{10 * parkAfter, parkAfter * 29 / 10, true}, // a request every 3.9 parkAfter
		{20 * parkAfter, 20 * parkAfter, false},     // idle a long time
		{60 * parkAfter, 3 * parkAfter, false},      // exactly parkDelaySlow after is not sooner
		{70 * parkAfter, 3*parkAfter - 1, true},     // just sooner
		{80 * parkAfter, 4*parkAfter - 1, false},    // its delay was parkDelaySlow: not soon
	}
	for i, s := range steps {
		c.parkedAt = t0.Add(s.parked)
		c.unparkedAt(c.parkedAt.Add(s.back))
		want := parkAfter
		if s.slow {
			want = parkDelaySlow * parkAfter
		}
		if c.slow != s.slow || c.parkDelay() != want {
			t.Fatalf("step %d: back %v after parking: slow %v, delay %v; want %v, %v", i, s.back, c.slow, c.parkDelay(), s.slow, want)
		}
	}
}

// TestProbeTime: a wait that parks probes when it parks, except one whose
// park delay is the longer one while large bodies are pending: it probes
// after parkAfter, when a connection with the usual delay gave them back.
func TestProbeTime(t *testing.T) {
	c := &serverConn{}
	c.idleFor = 90 * time.Second
	idle := time.Now().Add(c.idleFor)
	for _, tc := range []struct {
		slow, pending bool
		want          time.Duration // after the wait's start
	}{
		{false, false, parkAfter},
		{false, true, parkAfter},
		{true, false, parkDelaySlow * parkAfter},
		{true, true, parkAfter},
	} {
		c.slow, c.bodies.pending = tc.slow, tc.pending
		parkAt := c.parkTime(idle)
		want := parkTick(idle.Add(tc.want - c.idleFor))
		if got := c.probeTime(idle, parkAt); !got.Equal(want) {
			t.Errorf("slow %v, bodies pending %v: probe %v after the wait's start; want %v",
				tc.slow, tc.pending, got.Sub(idle.Add(-c.idleFor)), want.Sub(idle.Add(-c.idleFor)))
		}
	}
	// Not parking: waitProbe after the start, as before.
	c.slow, c.bodies.pending = true, true
	if got, want := c.probeTime(idle, time.Time{}), idle.Add(waitProbe-c.idleFor); !got.Equal(want) {
		t.Errorf("a wait that does not park probes at %v; want %v", got, want)
	}
}

// TestQuickReturnParksLater: a client that sends its next request as soon
// as its connection parked makes the connection wait parkDelaySlow times
// parkAfter before it parks again; its later requests are served as before.
func TestQuickReturnParksLater(t *testing.T) {
	const after = 300 * time.Millisecond
	parked, unparked := setParkHooks(t, after)
	addr, ps := serveParking(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, sizedBody)
	c := dialRawClient(t, addr)
	c.send("GET", "/size/10", nil)
	c.recv()
	waitEvent(t, parked, "park")
	if slow := parkedSlow(t, ps); slow {
		t.Fatal("a connection that never parked before waits longer than parkAfter")
	}
	sent := time.Now()
	c.send("GET", "/size/20", nil) // back at once: sooner than parkAfter
	if status, body := c.recv(); status != 200 || len(body) != 20 {
		t.Fatalf("GET after the park: %d, %d bytes", status, len(body))
	}
	waitEvent(t, unparked, "unpark")
	waitEvent(t, parked, "park after the quick return")
	if waited := time.Since(sent); waited < parkDelaySlow*after {
		t.Fatalf("parked %v after the request; want at least %v", waited, parkDelaySlow*after)
	}
	if slow := parkedSlow(t, ps); !slow {
		t.Fatal("a connection back sooner than its park delay does not wait longer to park")
	}
	c.send("GET", "/size/30", nil)
	if status, body := c.recv(); status != 200 || len(body) != 30 {
		t.Fatalf("GET after the second park: %d, %d bytes", status, len(body))
	}
	waitEvent(t, unparked, "unpark")
}

// parkedSlow returns whether ps's one parked connection waits
// parkDelaySlow times parkAfter before it parks.
func parkedSlow(t *testing.T, ps *parkSet) bool {
	t.Helper()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if len(ps.conns) != 1 {
		t.Fatalf("%d connections parked; want 1", len(ps.conns))
	}
	for _, c := range ps.conns {
		return c.slow
	}
	return false
}

// TestParkedConnIdleTimeout: a parked connection is closed when the idle
// timeout fasthttp asked for passes; Shutdown closes the others.
func TestParkedConnIdleTimeout(t *testing.T) {
	c, ps, parked, _ := parkedClient(t, 300*time.Millisecond)
	if b, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("a parked connection past its idle timeout: read %q, %v; want EOF", b, err)
	}
	// The waiting goroutine leaves the set before it closes the socket.
	if n := ps.len(); n != 0 {
		t.Fatalf("%d connections still parked after the idle timeout closed one", n)
	}

	c2 := dialRawClient(t, c.conn.RemoteAddr().String())
	c2.send("GET", "/size/10", nil)
	c2.recv()
	waitEvent(t, parked, "park")
	ps.close()
	if b, err := c2.br.ReadByte(); err != io.EOF {
		t.Fatalf("a parked connection after the set closed: read %q, %v; want EOF", b, err)
	}
}

// TestGatewayParksIdleConnections: through the gateway, with a real
// upstream, a connection parks between requests and answers after.
func TestGatewayParksIdleConnections(t *testing.T) {
	parked, unparked := setParkHooks(t, time.Millisecond)
	h := newTCPHarness(t, func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString("up:" + string(ctx.Path()))
	}, "")
	c := dialRawClient(t, h.addr)
	for i := range 5 {
		path := "/r" + strconv.Itoa(i)
		c.send("GET", path, nil)
		if status, body := c.recv(); status != 200 || string(body) != "up:"+path {
			t.Fatalf("GET %s: %d %q", path, status, body)
		}
		waitEvent(t, parked, "park")
		if i > 0 {
			waitEvent(t, unparked, "unpark")
		}
	}
}

// TestGatewayMaxRequestsPerConn: the gateway closes a connection after
// server.max_requests_per_conn requests, parked between them or not.
func TestGatewayMaxRequestsPerConn(t *testing.T) {
	parked, _ := setParkHooks(t, time.Millisecond)
	h := newTCPHarnessTop(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }, "", "server: {max_requests_per_conn: 2}\n")
	for _, parkBetween := range []bool{true, false} {
		c := dialRawClient(t, h.addr)
		for i := 1; i <= 2; i++ {
			c.send("GET", "/", nil)
			var resp fasthttp.Response
			if err := resp.Read(c.br); err != nil {
				t.Fatalf("park between %v, request %d: %v", parkBetween, i, err)
			}
			if resp.StatusCode() != 200 || resp.ConnectionClose() != (i == 2) {
				t.Fatalf("park between %v, request %d: %d, Connection: close %v", parkBetween, i, resp.StatusCode(), resp.ConnectionClose())
			}
			if parkBetween && i == 1 {
				waitEvent(t, parked, "park")
			}
		}
		if _, err := c.br.ReadByte(); err != io.EOF {
			t.Fatalf("park between %v: after the second response: %v; want EOF", parkBetween, err)
		}
	}
}

// goroutinesIn counts the goroutines whose stack has fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// TestManyParkedConnections: parked connections cost no goroutine each;
// every one answers its next request, in any order; those the client
// closes are closed and leave the set; the idle timeout closes the rest,
// parked at different times, each after its own wait.
func TestManyParkedConnections(t *testing.T) {
	const n = 40
	parked, unparked := setParkHooks(t, time.Millisecond)
	closed := setParkClosedHook(t, n)
	addr, ps := serveParking(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 3 * time.Second}, sizedBody)
	cs := make([]*rawClient, n)
	for i := range cs {
		cs[i] = dialRawClient(t, addr)
		cs[i].send("GET", "/size/"+strconv.Itoa(i), nil)
		if status, body := cs[i].recv(); status != 200 || len(body) != i {
			t.Fatalf("conn %d: %d, %d bytes", i, status, len(body))
		}
	}
	for range n {
		waitEvent(t, parked, "park")
	}
	if got := ps.len(); got != n {
		t.Fatalf("%d connections parked; want %d", got, n)
	}
	if g := goroutinesIn("fastgate/core.(*serverConn)"); g != 0 {
		t.Fatalf("%d goroutines in serverConn code with every connection parked; want 0", g)
	}
	if g := goroutinesIn("fastgate/core.(*parkSet).wait"); g != 1 {
		t.Fatalf("%d park waiters; want 1", g)
	}

	// Next requests in reverse order, each on a parked connection.
	for i := n - 1; i >= 0; i-- {
		cs[i].send("POST", "/echo", []byte("again "+strconv.Itoa(i)))
		if status, body := cs[i].recv(); status != 200 || string(body) != "again "+strconv.Itoa(i) {
			t.Fatalf("conn %d after its park: %d %q", i, status, body)
		}
		waitEvent(t, unparked, "unpark")
	}
	for range n {
		waitEvent(t, parked, "park again")
	}

	// Clients close half; the set closes them and lets them go.
	for i := 0; i < n; i += 2 {
		cs[i].conn.Close()
	}
	for range n / 2 {
		waitEvent(t, closed, "close of a connection its client closed")
	}
	if got := ps.len(); got != n/2 {
		t.Fatalf("%d connections parked after clients closed %d; want %d", got, n/2, n/2)
	}

	// The others reach their idle timeout, and each reads EOF.
	for i := 1; i < n; i += 2 {
		if b, err := cs[i].br.ReadByte(); err != io.EOF {
			t.Fatalf("conn %d past its idle timeout: read %q, %v; want EOF", i, b, err)
		}
	}
	for range n / 2 {
		waitEvent(t, closed, "close at the idle timeout")
	}
	if got := ps.len(); got != 0 {
		t.Fatalf("%d connections still parked after the idle timeout", got)
	}
}

// TestIdleTLSConnParks: a TLS keep-alive connection idle for parkAfter
// parks as a plain one does, with no goroutine of its own, and is served
// again when its next request comes, over the same TLS session; past its
// idle timeout the set closes it.
func TestIdleTLSConnParks(t *testing.T) {
	pki := newTestPKI(t)
	parked, unparked := setParkHooks(t, time.Millisecond)
	closed := setParkClosedHook(t, 4)
	wrap := func(ln net.Listener) net.Listener {
		return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pki.server}})
	}
	addr, ps := serveParkingWrapped(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, sizedBody, wrap)
	parkRounds(t, dialTLSClient(t, addr, pki), ps, parked, unparked, []int{10, 100 << 10, 0}, 40<<10, "tlsServerConn")

	// Idle past the timeout: the set closes it.
	short, _ := serveParkingWrapped(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 300 * time.Millisecond}, sizedBody, wrap)
	c2 := dialTLSClient(t, short, pki)
	c2.send("GET", "/size/10", nil)
	c2.recv()
	waitEvent(t, parked, "park")
	if b, err := c2.br.ReadByte(); err != io.EOF {
		t.Fatalf("a parked TLS connection past its idle timeout: read %q, %v; want EOF", b, err)
	}
	waitEvent(t, closed, "close at the idle timeout")
}

// TestMaxRequestsPerConnAcrossParks: server.max_requests_per_conn counts
// a connection's requests across its parks (fasthttp's own count starts
// again with each unpark): the third response of a connection parked
// between every two requests says Connection: close, and the connection
// closes after it.
func TestMaxRequestsPerConnAcrossParks(t *testing.T) {
	parked, unparked := setParkHooks(t, time.Millisecond)
	addr, _ := serveParking(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second, MaxRequestsPerConn: 3}, sizedBody)
	c := dialRawClient(t, addr)
	for i := 1; i <= 3; i++ {
		c.send("GET", "/size/"+strconv.Itoa(i), nil)
		var resp fasthttp.Response
		if err := resp.Read(c.br); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode() != 200 || len(resp.Body()) != i {
			t.Fatalf("request %d: %d, %d bytes", i, resp.StatusCode(), len(resp.Body()))
		}
		if last := i == 3; resp.ConnectionClose() != last {
			t.Fatalf("request %d: Connection: close %v; want %v", i, resp.ConnectionClose(), last)
		}
		if i == 3 {
			break
		}
		if i > 1 {
			waitEvent(t, unparked, "unpark")
		}
		waitEvent(t, parked, "park")
	}
	if n, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("after the third response: read %v, %v; want EOF (the connection closed)", n, err)
	}
}
