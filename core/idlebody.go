package core

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

// fasthttp keeps a connection's request context, and with it the request
// and response body buffers, for as long as the connection is open: a busy
// keep-alive connection reuses them without allocating. After one 200 KB
// response, though, an idle keep-alive connection kept 280 KB, and a
// thousand such clients kept 280 MB. Giving the buffers back after every
// response instead doubled the CPU of a 200 KB proxied response (each one
// allocated again, and the garbage collector ran all the time).
//
// So a connection gives back only body buffers larger than maxIdleBody, and
// only once it has waited waitProbe for its next request: a busy connection
// keeps them, an idle one holds at most maxIdleBody per direction. The
// server's ConnState hook tells the connection when its response is done
// (StateIdle) and when the next request starts (StateActive); the
// connection's own Read gives the buffers back, in the goroutine that
// owns the context, when its wait for the next request lasts.

// maxIdleBody is the largest body buffer a connection keeps while it waits
// for its next request.
const maxIdleBody = 64 << 10

// testHookBodiesReleased, when set by a test, runs when a connection gave
// back its body buffers.
var testHookBodiesReleased func()

// idleBodies is the connection's part in it.
type idleBodies struct {
	// ctx is the request context of the connection's last response
	// (fasthttp keeps one per connection); nil once hijacked.
	ctx *fasthttp.RequestCtx
	// pending is set between the end of a response whose bodies are large
	// and the start of the next request: a wait for that request longer
	// than waitProbe gives them back.
	pending bool
}

// served records ctx when its response is complete.
func (b *idleBodies) served(ctx *fasthttp.RequestCtx) {
	if ctx.Hijacked() {
		b.ctx = nil
		return
	}
	b.ctx = ctx
}

// idle is StateIdle: the response is written, and the bodies are no
// longer needed.
func (b *idleBodies) idle() {
	ctx := b.ctx
	b.pending = ctx != nil && !ctx.Request.IsBodyStream() && !ctx.Response.IsBodyStream() &&
		(cap(ctx.Request.Body()) > maxIdleBody || cap(ctx.Response.Body()) > maxIdleBody)
}

// release gives the large body buffers back, when pending.
func (b *idleBodies) release() {
	if !b.pending {
		return
	}
	b.pending = false
	b.ctx.Request.ReleaseBody(maxIdleBody)
	b.ctx.Response.ReleaseBody(maxIdleBody)
	if testHookBodiesReleased != nil {
		testHookBodiesReleased()
	}
}

// bodiesOf returns the idleBodies of a connection fasthttp serves, or nil.
func bodiesOf(c net.Conn) *idleBodies {
	switch c := c.(type) {
	case *serverConn:
		return &c.bodies
	case *tlsServerConn:
		return &c.bodies
	case *peekedConn:
		return bodiesOf(c.Conn)
	}
	return nil
}

// connState is the server's ConnState hook.
func connState(c net.Conn, state fasthttp.ConnState) {
	sc, _ := c.(*serverConn)
	if sc != nil {
		sc.between = state == fasthttp.StateIdle
	}
	if b := bodiesOf(c); b != nil {
		switch state {
		case fasthttp.StateIdle:
			b.idle()
		case fasthttp.StateActive:
			b.pending = false
		case fasthttp.StateHijacked, fasthttp.StateClosed:
			b.ctx, b.pending = nil, false
		}
	}
	if sc != nil && state == fasthttp.StateClosed {
		// Last: a parked connection belongs to its waiting goroutine from
		// here (park.go).
		sc.parked()
	}
}

// tlsServerConn is an accepted TLS connection: its Read gives back large
// body buffers when the wait for the next request lasts (serverConn does
// the same for plain TCP with its own deadlines).
type tlsServerConn struct {
	*tls.Conn
	bodies idleBodies
	rwant  time.Time // the read deadline asked for
}

func (c *tlsServerConn) SetReadDeadline(t time.Time) error {
	c.rwant = t
	return c.Conn.SetReadDeadline(t)
}

func (c *tlsServerConn) SetDeadline(t time.Time) error {
	c.rwant = t
	return c.Conn.SetDeadline(t)
}

// Read waits at most waitProbe before it gives back pending bodies, then
// waits on under the deadline asked for. A timed-out read leaves a TLS
// connection usable (the error is temporary).
func (c *tlsServerConn) Read(p []byte) (int, error) {
	if !c.bodies.pending {
		return c.Conn.Read(p)
	}
	early := time.Now().Add(waitProbe)
	if !c.rwant.IsZero() && !early.Before(c.rwant) {
		return c.Conn.Read(p)
	}
	if err := c.Conn.SetReadDeadline(early); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		c.bodies.release()
		if err := c.Conn.SetReadDeadline(c.rwant); err != nil {
			return 0, err
		}
		return c.Conn.Read(p)
	}
	c.bodies.pending = false
	if derr := c.Conn.SetReadDeadline(c.rwant); err == nil {
		err = derr
	}
	return n, err
}

// tlsConnOf returns the TLS connection c is or wraps.
func tlsConnOf(c net.Conn) (*tls.Conn, bool) {
	switch c := c.(type) {
	case *tls.Conn:
		return c, true
	case *tlsServerConn:
		return c.Conn, true
	}
	return nil, false
}
