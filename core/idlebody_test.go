package core

import (
	"bytes"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// bigBodies answers /big with 200 KB, /echo with the request body, /small
// with 2 bytes, and
// /caps with the capacities of the body buffers the connection's context
// kept from its last request: "request response".
func bigBodies(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/big":
		ctx.SetBody(bytes.Repeat([]byte("b"), 200<<10))
	case "/echo":
		ctx.SetBody(ctx.Request.Body())
	case "/small":
		ctx.SetBodyString("ok")
	case "/caps":
		ctx.SetBodyString(strconv.Itoa(cap(ctx.Request.Body())) + " " + strconv.Itoa(cap(ctx.Response.Body())))
	}
}

// serveBigBodies serves bigBodies as the gateway does (waitFirstListener,
// connState), over TLS when cert is set, and returns a client connection.
// waitProbe and the release hook are set before the server starts.
func serveBigBodies(t *testing.T, probe time.Duration, released chan struct{}, pki *testPKI) *rawClient {
	return serveBigBodiesParking(t, probe, released, pki, false)
}

// serveBigBodiesParking is serveBigBodies with parking when park is set
// (parkAfter and the park hooks set before).
func serveBigBodiesParking(t *testing.T, probe time.Duration, released chan struct{}, pki *testPKI, park bool) *rawClient {
	setWaitProbe(t, probe)
	// Only this server's releases count: a connection left by an earlier
	// test can give its bodies back while this one runs.
	var mine atomic.Pointer[string]
	old := testHookBodiesReleased
	testHookBodiesReleased = func(ctx *fasthttp.RequestCtx) {
		if a := mine.Load(); a == nil || ctx.LocalAddr().String() != *a {
			return
		}
		select {
		case released <- struct{}{}:
		default: // nobody waits (released nil), or more than it waits for
		}
	}
	t.Cleanup(func() { testHookBodiesReleased = old })
	var wrap func(net.Listener) net.Listener
	if pki != nil {
		wrap = func(ln net.Listener) net.Listener {
			return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pki.server}})
		}
	}
	srv := &fasthttp.Server{ReadTimeout: 5 * time.Second, IdleTimeout: 10 * time.Second, ConnState: connState}
	var parks *parkSet
	if park {
		parks = newParkSet(srv.ServeConn)
	}
	addr := serveListener(t, srv, bigBodies, wrap, parks)
	mine.Store(&addr)
	if pki == nil {
		return dialRawClient(t, addr)
	}
	return dialTLSClient(t, addr, pki)
}

// waitReleased waits for the connection to give its bodies back; the bound
// only turns a hang into a failure.
func waitReleased(t testing.TB, released chan struct{}) {
	t.Helper()
	select {
	case <-released:
	case <-time.After(20 * time.Second):
		t.Fatal("the idle connection never gave its bodies back")
	}
}

// caps asks for the capacities the connection kept.
func (c *rawClient) caps() (req, resp int) {
	c.t.Helper()
	c.send("GET", "/caps", nil)
	_, body := c.recv()
	f := strings.Fields(string(body))
	req, _ = strconv.Atoi(f[0])
	resp, _ = strconv.Atoi(f[1])
	return req, resp
}

// transport is plain TCP (pki nil) or TLS trusting pki.
type transport struct {
	name string
	pki  *testPKI
}

// transports are the ways a client reaches the server: plain TCP and TLS.
func transports(t *testing.T) []transport {
	return []transport{{"tcp", nil}, {"tls", newTestPKI(t)}}
}

// TestIdleConnGivesBackLargeBodies: a keep-alive connection that waits
// waitProbe for its next request gives back body buffers larger than
// maxIdleBody; one whose next request comes sooner keeps them and reuses
// them. Over plain TCP and TLS.
func TestIdleConnGivesBackLargeBodies(t *testing.T) {
	for _, tc := range transports(t) {
		t.Run(tc.name+"/idle", func(t *testing.T) {
			released := make(chan struct{}, 16)
			c := serveBigBodies(t, time.Millisecond, released, tc.pki)
			c.send("GET", "/big", nil)
			if _, body := c.recv(); len(body) != 200<<10 {
				t.Fatalf("GET /big: %d bytes", len(body))
			}
			waitReleased(t, released)
			if req, resp := c.caps(); req > maxIdleBody || resp > maxIdleBody {
				t.Fatalf("after an idle wait the connection kept request %d, response %d bytes; want at most %d", req, resp, maxIdleBody)
			}
			post := bytes.Repeat([]byte("p"), 300<<10)
			c.send("POST", "/echo", post)
			if _, body := c.recv(); !bytes.Equal(body, post) {
				t.Fatalf("POST /echo: %d bytes back", len(body))
			}
			waitReleased(t, released)
			if req, resp := c.caps(); req > maxIdleBody || resp > maxIdleBody {
				t.Fatalf("after an idle wait the connection kept request %d, response %d bytes; want at most %d", req, resp, maxIdleBody)
			}
			// A large upload with a small answer, which a plain connection
			// holds for the wait (waitRead's probe gives the body back).
			c.send("POST", "/small", post)
			if _, body := c.recv(); string(body) != "ok" {
				t.Fatalf("POST /small: %q", body)
			}
			waitReleased(t, released)
			if req, _ := c.caps(); req > maxIdleBody {
				t.Fatalf("after an idle wait the connection kept a %d-byte request buffer; want at most %d", req, maxIdleBody)
			}
		})
		t.Run(tc.name+"/busy", func(t *testing.T) {
			c := serveBigBodies(t, time.Hour, nil, tc.pki)
			c.send("GET", "/big", nil)
			c.recv()
			if _, resp := c.caps(); resp < 200<<10 {
				t.Fatalf("a busy connection kept a %d-byte response buffer; want the 200 KB one", resp)
			}
		})
	}
}

// TestParkingConnGivesBackBodiesOnce: a connection that may park (whose
// wait probes when it parks, not at waitProbe) still gives its large
// bodies back: once, by the time it parks, and small ones never. Over
// plain TCP and TLS.
func TestParkingConnGivesBackBodiesOnce(t *testing.T) {
	for _, tc := range transports(t) {
		t.Run(tc.name, func(t *testing.T) {
			parked, unparked := setParkHooks(t, 50*time.Millisecond)
			released := make(chan struct{}, 16)
			c := serveBigBodiesParking(t, time.Millisecond, released, tc.pki, true)
			for round := range 2 {
				c.send("GET", "/big", nil)
				if _, body := c.recv(); len(body) != 200<<10 {
					t.Fatalf("round %d: GET /big: %d bytes", round, len(body))
				}
				if round > 0 {
					waitEvent(t, unparked, "unpark")
				}
				waitEvent(t, parked, "park after an idle wait")
				if n := len(released); n != 1 {
					t.Fatalf("round %d: bodies given back %d times by the time the connection parked; want once", round, n)
				}
				<-released
				if req, resp := c.caps(); req > maxIdleBody || resp > maxIdleBody {
					t.Fatalf("round %d: after the park the connection kept request %d, response %d bytes; want at most %d", round, req, resp, maxIdleBody)
				}
				waitEvent(t, unparked, "unpark")
				waitEvent(t, parked, "park after /caps")
				if n := len(released); n != 0 {
					t.Fatalf("round %d: small bodies given back %d times; want none", round, n)
				}
			}
		})
	}
}

// TestIdleConnPipelinedBodyKept: a request pipelined behind a large
// response, whose body the server is still reading when it waits, keeps
// its body (TestIdleBodiesStates checks that the start of a request ends
// the giving back).
func TestIdleConnPipelinedBodyKept(t *testing.T) {
	c := serveBigBodies(t, time.Millisecond, nil, nil)
	post := bytes.Repeat([]byte("q"), 100<<10)
	head := "GET /big HTTP/1.1\r\nHost: t\r\n\r\nPOST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + strconv.Itoa(len(post)) + "\r\n\r\n"
	if _, err := c.conn.Write(append([]byte(head), post[:1000]...)); err != nil {
		t.Fatal(err)
	}
	// The /big response is written when the server reads for the rest of
	// the body, and the rest goes only after it arrived.
	if _, body := c.recv(); len(body) != 200<<10 {
		t.Fatalf("GET /big: %d bytes", len(body))
	}
	if _, err := c.conn.Write(post[1000:]); err != nil {
		t.Fatal(err)
	}
	if _, body := c.recv(); !bytes.Equal(body, post) {
		t.Fatalf("pipelined POST /echo: %d bytes back, not the %d sent", len(body), len(post))
	}
}

// TestIdleBodiesStates: the connection gives bodies back only between the
// end of a response (StateIdle) and the start of the next request
// (StateActive), and only bodies larger than maxIdleBody.
func TestIdleBodiesStates(t *testing.T) {
	sc := &serverConn{}
	var ctx fasthttp.RequestCtx
	ctx.Response.KeepBodyBuffer = true // as a server's context keeps it
	large := func() {
		ctx.Response.SetBody(make([]byte, maxIdleBody+1))
		ctx.Response.ResetBody() // as fasthttp's Reset keeps it
	}

	large()
	sc.bodies.served(&ctx)
	connState(sc, fasthttp.StateIdle)
	connState(sc, fasthttp.StateActive)
	sc.bodies.release()
	if cap(ctx.Response.Body()) <= maxIdleBody {
		t.Fatal("bodies given back after the next request started")
	}

	connState(sc, fasthttp.StateIdle)
	if !sc.bodies.pending {
		t.Fatal("a large body is not pending at StateIdle")
	}
	sc.bodies.release()
	if c := cap(ctx.Response.Body()); c > maxIdleBody {
		t.Fatalf("kept %d bytes after the release", c)
	}

	ctx.Response.SetBody(make([]byte, maxIdleBody))
	sc.bodies.served(&ctx)
	connState(sc, fasthttp.StateIdle)
	if sc.bodies.pending {
		t.Fatal("a body of maxIdleBody is pending")
	}

	large()
	connState(sc, fasthttp.StateClosed)
	connState(sc, fasthttp.StateIdle)
	if sc.bodies.pending || sc.bodies.ctx != nil {
		t.Fatal("a closed connection still refers to its context")
	}
}
