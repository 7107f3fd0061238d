package core

import (
	"bytes"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// setParkHooks sets parkAfter and the park hooks for one test, before its
// server starts; parked and unparked get a value per event.
func setParkHooks(t *testing.T, after time.Duration) (parked, unparked chan struct{}) {
	t.Helper()
	setWaitProbe(t, 5*time.Millisecond) // a held response's wait probes first
	parked, unparked = make(chan struct{}, 64), make(chan struct{}, 64)
	oldAfter, oldP, oldU := parkAfter, testHookParked, testHookUnparked
	parkAfter = after
	testHookParked = func() { parked <- struct{}{} }
	testHookUnparked = func() { unparked <- struct{}{} }
	t.Cleanup(func() { parkAfter, testHookParked, testHookUnparked = oldAfter, oldP, oldU })
	return parked, unparked
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

// serveParking serves h as the gateway does, with parking, and returns
// the address and the park set.
func serveParking(t *testing.T, srv *fasthttp.Server, h fasthttp.RequestHandler) (string, *parkSet) {
	t.Helper()
	srv.ConnState = connState
	ps := newParkSet(srv.ServeConn)
	return serveListener(t, srv, h, nil, ps), ps
}

// TestIdleConnParks: a keep-alive connection idle for parkAfter leaves
// fasthttp's loop and is served again, as a new connection, when its
// next request comes: held and written-at-once responses, a POST body,
// and several rounds on one connection.
func TestIdleConnParks(t *testing.T) {
	parked, unparked := setParkHooks(t, time.Millisecond)
	addr, ps := serveParking(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second}, sizedBody)
	c := dialRawClient(t, addr)
	for i, size := range []int{10, 100 << 10, 1000, 70 << 10, 0} {
		c.send("GET", "/size/"+strconv.Itoa(size), nil)
		if status, body := c.recv(); status != 200 || len(body) != size {
			t.Fatalf("round %d: GET /size/%d: %d, %d bytes", i, size, status, len(body))
		}
		waitEvent(t, parked, "park after an idle wait")
		if n := ps.len(); n != 1 {
			t.Fatalf("round %d: %d connections parked; want 1", i, n)
		}
		post := bytes.Repeat([]byte{'a' + byte(i)}, 5000)
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
	}
}

// TestParkedConnIdleTimeout: a parked connection is closed when the idle
// timeout fasthttp asked for passes; Shutdown closes the others.
func TestParkedConnIdleTimeout(t *testing.T) {
	parked, _ := setParkHooks(t, time.Millisecond)
	addr, ps := serveParking(t, &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 300 * time.Millisecond}, sizedBody)
	c := dialRawClient(t, addr)
	c.send("GET", "/size/10", nil)
	c.recv()
	waitEvent(t, parked, "park")
	if b, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("a parked connection past its idle timeout: read %q, %v; want EOF", b, err)
	}
	// The waiting goroutine leaves the set before it closes the socket.
	if n := ps.len(); n != 0 {
		t.Fatalf("%d connections still parked after the idle timeout closed one", n)
	}

	c2 := dialRawClient(t, addr)
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
