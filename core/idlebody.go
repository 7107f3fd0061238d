package core

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"syscall"
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
// only once it has waited waitProbe for its next request (parkAfter for one
// that may park, when it parks: one timer per idle wait): a busy connection
// keeps them, an idle one holds at most maxIdleBody per direction. The
// server's ConnState hook tells the connection when its response is done
// (StateIdle) and when the next request starts (StateActive); the
// connection's own Read gives the buffers back, in the goroutine that
// owns the context, when its wait for the next request lasts.

// maxIdleBody is the largest body buffer a connection keeps while it waits
// for its next request.
const maxIdleBody = 64 << 10

// testHookBodiesReleased, when set by a test, runs when a connection gave
// back its body buffers, with the context of the request that had them.
var testHookBodiesReleased func(ctx *fasthttp.RequestCtx)

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
		testHookBodiesReleased(b.ctx)
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
	p := parkerOf(c)
	if p != nil {
		p.between = state == fasthttp.StateIdle
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
	if p != nil && state == fasthttp.StateClosed {
		// Last: a parked connection belongs to its park set from here
		// (park.go).
		p.parked()
	}
}

// parkerOf returns the parking state of a connection fasthttp serves as
// it was accepted, or nil.
func parkerOf(c net.Conn) *parker {
	switch c := c.(type) {
	case *serverConn:
		return &c.parker
	case *tlsServerConn:
		return &c.parker
	}
	return nil
}

// tlsServerConn is an accepted TLS connection: its Read gives back large
// body buffers when the wait for the next request lasts, and parks the
// connection when it lasts parkAfter (serverConn does the same for plain
// TCP with its own deadlines).
type tlsServerConn struct {
	*tls.Conn
	bodies idleBodies
	// The read deadline asked for (want) and set on the socket (set):
	// Read may set an earlier one, which a busy connection moves a few
	// times a second, not once per request (serverConn.earlier).
	rwant, rset time.Time
	parker      // parking (park.go)
}

// newTLSServerConn returns tc as a tlsServerConn that parks in parks
// (nil: never) when its socket is reachable.
func newTLSServerConn(tc *tls.Conn, parks *parkSet, idleFor time.Duration) *tlsServerConn {
	c := &tlsServerConn{Conn: tc}
	if sc, ok := tc.NetConn().(syscall.Conn); ok && parks != nil {
		if raw, err := sc.SyscallConn(); err == nil {
			c.conn, c.parks, c.sock, c.idleFor = c, parks, raw, idleFor
		}
	}
	return c
}

// SetReadDeadline asks for t, keeping an earlier socket deadline Read set
// (Read moves it on when it fires before t).
func (c *tlsServerConn) SetReadDeadline(t time.Time) error {
	c.rwant = t
	if t.Equal(c.rset) || !c.rset.IsZero() && (t.IsZero() || c.rset.Before(t)) {
		return nil
	}
	return c.setRead(t)
}

func (c *tlsServerConn) SetDeadline(t time.Time) error {
	c.rwant, c.rset = t, t
	return c.Conn.SetDeadline(t)
}

func (c *tlsServerConn) setRead(t time.Time) error {
	c.rset = t
	return c.Conn.SetReadDeadline(t)
}

// Read waits for a new request at most waitProbe before it gives back
// pending bodies, or parkAfter before it gives them back and parks the
// connection when it may park; a socket
// deadline that fires before the one asked for moves on to it. A
// timed-out read leaves a TLS connection usable (the error is temporary),
// and one that read nothing leaves nothing buffered in it: what comes
// next is on the socket.
func (c *tlsServerConn) Read(p []byte) (int, error) {
	var parkAt time.Time
	if c.canPark() {
		parkAt = c.parkTime(c.rwant)
	}
	probe := c.bodiesProbe(c.bodies.pending, parkAt, c.rwant)
	if t := earliest(parkAt, probe); !t.IsZero() && (c.rwant.IsZero() || t.Before(c.rwant)) &&
		!keepsDeadline(c.rset, t) {
		if err := c.setRead(t); err != nil {
			return 0, err
		}
	}
	for {
		n, err := c.Conn.Read(p)
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			c.bodies.pending = false
			return n, err
		}
		now := time.Now()
		if !c.rwant.IsZero() && !now.Before(c.rwant) {
			return n, err // the deadline asked for
		}
		if !probe.IsZero() && !now.Before(probe) {
			c.bodies.release()
			probe = time.Time{}
		}
		if !parkAt.IsZero() && !now.Before(parkAt) {
			c.bodies.release()
			return c.parkNow()
		}
		next := earliest(parkAt, probe)
		if next.IsZero() || !c.rwant.IsZero() && c.rwant.Before(next) {
			next = c.rwant
		}
		if err := c.setRead(next); err != nil {
			return 0, err
		}
	}
}

// earliest returns the earlier of a and b that is set, or zero.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// Close parks a connection whose Read parked it, and otherwise closes it.
func (c *tlsServerConn) Close() error {
	if c.parking.Load() && c.park(c.rwant) {
		return nil
	}
	defer c.uncount()
	return c.Conn.Close()
}

// unparked readies c to be served again.
func (c *tlsServerConn) unparked() {
	c.rwant = time.Time{}
	c.setRead(time.Time{}) //nolint:errcheck // a closed socket fails the next read
}

// closeNow closes a parked connection.
func (c *tlsServerConn) closeNow() {
	c.Conn.Close() //nolint:errcheck // closing an idle connection
	c.uncount()
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
