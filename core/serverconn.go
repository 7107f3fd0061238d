package core

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// fasthttp's connection loop writes a response, then reads the next
// request: on a keep-alive connection that read comes before the client
// has had the response, so it returns EAGAIN and only then does the
// goroutine wait for the poller. That is one wasted syscall of the five a
// small proxied request costs. serverConn removes it the way send does for
// upstreams: a complete response is held back when fasthttp writes it and
// written from inside syscall.RawConn.Read, whose callback runs after the
// poller's readiness has been reset, so returning false waits for the next
// request without reading, and the read that follows finds it.
//
// One case can lose a readiness edge: a client that sends the next request
// before it has the previous response (HTTP/1.1 pipelining), when that
// request arrives while the handler runs. The reset forgets it, so the wait
// has a probe deadline (waitProbe): when it expires the connection reads
// anyway under the idle deadline fasthttp asked for, and one that finds a
// request already there goes back to plain reads for good. A pipelining
// client waits waitProbe once; a closed client is seen waitProbe late. A
// connection that may park probes when it parks (its park delay): one
// timer per idle wait, not two; one whose delay is the longer one
// (parkDelaySlow) probes after parkAfter while large bodies are pending.

// waitProbe bounds the write-then-wait before a plain read checks for a
// request whose readiness the wait could have missed.
var waitProbe = 250 * time.Millisecond

// maxHeldResponse bounds the response bytes held back for the next read;
// larger responses are written at once.
const maxHeldResponse = 64 << 10

// testHookPartial, when set by a test, runs when a held response did not
// fit the socket whole.
var testHookPartial func()

// waitFirstListener accepts plain TCP connections as serverConns, and TLS
// ones as tlsServerConns (idlebody.go). idleFor
// is the server's idle timeout (fasthttp's IdleTimeout, else ReadTimeout):
// the idle deadline fasthttp sets less idleFor is when the wait began.
type waitFirstListener struct {
	net.Listener
	idleFor time.Duration
	// parks, when set, parks the listener's idle connections (park.go).
	parks *parkSet
	// maxRequests is server.max_requests_per_conn (0: unlimited), counted
	// by the connections across their parks.
	maxRequests int
	// perIP, when set, limits each client IP's open connections
	// (server.max_conns_per_ip, perip.go).
	perIP *perIPConns
}

func (l waitFirstListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return c, err
		}
		if c, ok := l.wrap(c); ok {
			return c, nil
		}
	}
}

// wrap returns c as a serverConn or tlsServerConn, counted against its
// client IP; ok is false when the IP is over its limit and c was refused.
func (l waitFirstListener) wrap(c net.Conn) (_ net.Conn, ok bool) {
	tc, isTLS := c.(*tls.Conn)
	var ip netip.Addr
	counted := false
	if l.perIP != nil {
		if ip, counted = connIP(c); counted && !l.perIP.open(ip) {
			rejectConn(c, isTLS)
			return nil, false
		}
	}
	var p *parker
	if isTLS {
		t := newTLSServerConn(tc, l.parks, l.idleFor)
		c, p = t, &t.parker
	} else if tcp, raw, ok := rawTCP(c); ok {
		sc := &serverConn{TCPConn: tcp, raw: raw}
		sc.step = sc.run
		sc.conn, sc.parks, sc.sock, sc.idleFor = sc, l.parks, raw, l.idleFor
		c, p = sc, &sc.parker
	} else {
		if counted {
			l.perIP.closed(ip) // not a connection it can count
		}
		return c, true
	}
	p.maxRequests = l.maxRequests
	if counted {
		p.perIP, p.ip = l.perIP, ip
	}
	return c, true
}

// Phases of serverConn.run.
const (
	phaseWrite     = iota // write the held response, then wait
	phaseProbe            // read at once; a request found means a lost edge
	phaseProbePark        // phaseProbe, and nothing found ends the read (none)
	phaseReadFirst        // read at once, or wait
	phaseRead             // read after readiness
)

// serverConn is an accepted client connection whose responses can be
// written by the read that waits for the next request.
type serverConn struct {
	*net.TCPConn
	raw  syscall.RawConn
	step func(fd uintptr) bool // run, made once

	// holdNext is set by the handler when the response it leaves is
	// complete (not streamed, not hijacked): fasthttp's writes of it are
	// held until the next Read.
	holdNext bool
	// holding is set while a response is held.
	holding bool
	// plain is set for good once a client pipelined.
	plain bool
	// armed is set when fasthttp set the idle read deadline with a
	// response held: the next Read writes it and waits.
	armed bool
	idle  time.Time // the idle deadline fasthttp asked for

	// The deadlines asked for (want) and set on the socket (set); eager
	// keeps them equal.
	rwant, rset time.Time
	wwant, wset time.Time
	eager       bool

	// bodies gives back large body buffers when the wait for the next
	// request lasts waitProbe (idlebody.go).
	bodies idleBodies

	parker // parking (park.go)

	mu     sync.Mutex // held, off and closed; Close may come from Shutdown
	held   *heldBuf
	off    int
	closed bool

	// State of one RawConn.Read.
	phase int
	p     []byte
	n     int
	rerr  error
	werr  error
	ran   bool // the callback ran
	got   bool // the callback read
	found bool // the probe read at once
	none  bool // phaseProbePark read nothing: the connection parks
	vec   [2][]byte
	bufs  net.Buffers // over vec; a field, so writev does not allocate

	// For tests: write-then-wait reads done, and held responses the
	// socket took only in part.
	waits, partials int
}

type heldBuf struct{ b []byte }

var heldPool = sync.Pool{New: func() any { return &heldBuf{b: make([]byte, 0, 4096)} }}

// holdResponse tells ctx's connection whether the response the handler
// leaves may be held back until the next read: only a complete one, since a
// streamed body's writes must reach the client as they come. It also hands
// the connection ctx, whose large bodies it gives back when idle, and
// counts the request against server.max_requests_per_conn.
func holdResponse(ctx *fasthttp.RequestCtx) {
	if sc, ok := ctx.Conn().(*serverConn); ok {
		sc.holdNext = !ctx.Response.IsBodyStream() && !ctx.Hijacked()
		sc.bodies.served(ctx)
		sc.parkable = true
		sc.countRequest(ctx)
	} else if tc, ok := ctx.Conn().(*tlsServerConn); ok {
		tc.bodies.served(ctx)
		tc.parkable = !ctx.Hijacked()
		tc.countRequest(ctx)
	} else if b := bodiesOf(ctx.Conn()); b != nil {
		b.served(ctx)
	}
}

// Write holds p when the response is complete and small enough, and
// otherwise writes what is held and p together.
func (c *serverConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	held := 0
	if c.held != nil {
		held = len(c.held.b) - c.off
	}
	if c.holdNext && !c.plain && held+len(p) <= maxHeldResponse {
		if c.held == nil {
			c.held = heldPool.Get().(*heldBuf)
		}
		c.held.b = append(c.held.b, p...)
		c.holding = true
		return len(p), nil
	}
	if held == 0 {
		return c.writeAll(p)
	}
	c.vec[0], c.vec[1] = c.held.b[c.off:], p
	c.bufs = c.vec[:]
	n, err := c.bufs.WriteTo(c.TCPConn)
	for err != nil && c.rearmWrite(err) {
		var m int64
		m, err = c.bufs.WriteTo(c.TCPConn)
		n += m
	}
	c.vec[0], c.vec[1], c.bufs = nil, nil, nil
	c.releaseLocked()
	c.holding = false
	return max(int(n)-held, 0), err
}

// writeAll writes p under the write deadline asked for.
func (c *serverConn) writeAll(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	for err != nil && c.rearmWrite(err) {
		var m int
		m, err = c.TCPConn.Write(p[n:])
		n += m
	}
	return n, err
}

// flushLocked writes what is held.
func (c *serverConn) flushLocked() error {
	if c.held == nil {
		return nil
	}
	_, err := c.writeAll(c.held.b[c.off:])
	c.releaseLocked()
	return err
}

func (c *serverConn) releaseLocked() {
	h := c.held
	c.held, c.off = nil, 0
	if cap(h.b) > maxHeldResponse+4096 {
		return
	}
	h.b = h.b[:0]
	heldPool.Put(h)
}

func (c *serverConn) flush() error {
	c.mu.Lock()
	err := c.flushLocked()
	c.mu.Unlock()
	return err
}

// SetReadDeadline keeps fasthttp's idle deadline for the wait when a
// response is held (Read sets it), and otherwise asks for t.
func (c *serverConn) SetReadDeadline(t time.Time) error {
	if c.holding {
		c.idle, c.armed = t, true
		return nil
	}
	c.armed = false
	return c.askRead(t)
}

// askRead asks for read deadline t, moving the socket's only when t is
// earlier (or the socket has none).
func (c *serverConn) askRead(t time.Time) error {
	c.rwant = t
	if t.Equal(c.rset) || !c.eager && !c.rset.IsZero() && (t.IsZero() || !t.Before(c.rset)) {
		return nil
	}
	return c.setRead(t)
}

// askProbe asks for the probe deadline t of a wait for the next request.
// The socket's deadline stays only as keepsDeadline says: one left by a
// wait that began a second or more ago does not fire in the middle of this
// one, a wake and a read for nothing on every request of a client that
// comes back every second or two.
func (c *serverConn) askProbe(t time.Time) error {
	c.rwant = t
	if !c.eager && keepsDeadline(c.rset, t) {
		return nil
	}
	return c.setRead(t)
}

// keepsDeadline reports whether a socket deadline already set at set may
// stay for a wait that wants t: it comes first, by less than parkAfter/2.
// A busy connection then moves its timer a few times a second, not once
// per request, and an idle one wakes once more before t.
func keepsDeadline(set, t time.Time) bool {
	return !set.IsZero() && !set.After(t) && t.Sub(set) < parkAfter/2
}

func (c *serverConn) setRead(t time.Time) error {
	c.rset = t
	return c.TCPConn.SetReadDeadline(t)
}

// rearmRead reports whether err is the socket's read deadline firing
// before the one asked for, which has not passed; it then moves the
// socket's deadline to the asked one, and the read is to be retried.
func (c *serverConn) rearmRead(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.rset.Equal(c.rwant) ||
		!c.rwant.IsZero() && !time.Now().Before(c.rwant) {
		return false
	}
	return c.setRead(c.rwant) == nil
}

// SetWriteDeadline asks for write deadline t, moving the socket's only
// when t is earlier (or the socket has none).
func (c *serverConn) SetWriteDeadline(t time.Time) error {
	c.wwant = t
	if t.Equal(c.wset) || !c.eager && !c.wset.IsZero() && (t.IsZero() || !t.Before(c.wset)) {
		return nil
	}
	c.wset = t
	return c.TCPConn.SetWriteDeadline(t)
}

// rearmWrite is rearmRead for writes.
func (c *serverConn) rearmWrite(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.wset.Equal(c.wwant) ||
		!c.wwant.IsZero() && !time.Now().Before(c.wwant) {
		return false
	}
	c.wset = c.wwant
	return c.TCPConn.SetWriteDeadline(c.wwant) == nil
}

// exact sets the deadlines asked for on the socket and keeps them exact
// from now on, before the socket is used other than by Read and Write.
func (c *serverConn) exact() error {
	c.eager, c.holding, c.armed = true, false, false
	if err := c.flush(); err != nil {
		return err
	}
	if !c.rset.Equal(c.rwant) {
		if err := c.setRead(c.rwant); err != nil {
			return err
		}
	}
	return c.SetWriteDeadline(c.wwant)
}

// SetDeadline is a hijack's: what is held goes first, and deadlines are
// exact from then on.
func (c *serverConn) SetDeadline(t time.Time) error {
	if err := c.exact(); err != nil {
		return err
	}
	c.rwant, c.rset, c.wwant, c.wset = t, t, t, t
	return c.TCPConn.SetDeadline(t)
}

// Read writes a held response and waits for the next request when fasthttp
// armed the wait; otherwise it writes what is held and reads.
func (c *serverConn) Read(p []byte) (int, error) {
	c.holdNext = false
	if c.holding {
		c.holding = false
		if c.armed {
			c.armed = false
			return c.waitRead(p)
		}
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return c.readNow(p)
}

// readNow reads p, waiting when nothing is there yet.
func (c *serverConn) readNow(p []byte) (int, error) {
	// A wait for a new request gives back large bodies after waitProbe
	// and parks after parkAfter: the socket's deadline fires then, and
	// rearmRead moves it to the asked one.
	var parkAt time.Time
	if c.canPark() {
		parkAt = c.parkTime(c.rwant)
	}
	t := earliest(parkAt, c.bodiesProbe(c.bodies.pending, parkAt, c.rwant))
	if err := c.earlier(t); err != nil {
		return 0, err
	}
	for {
		n, err, done := c.rawRead(p, phaseReadFirst)
		if done {
			c.bodies.pending = false
			return n, err
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.bodies.release()
			if !parkAt.IsZero() && (c.rwant.IsZero() || parkAt.Before(c.rwant)) {
				if c.parkDue(parkAt) {
					return c.parkNow()
				}
				if err := c.setRead(parkAt); err != nil {
					return 0, err
				}
				continue
			}
		}
		if !c.rearmRead(err) {
			return 0, err
		}
	}
}

// earlier moves the socket's read deadline to t when t comes before the
// one asked for (rearmRead moves it back when it fires), unless the
// socket's may stay (keepsDeadline).
func (c *serverConn) earlier(t time.Time) error {
	if t.IsZero() || !c.rwant.IsZero() && !t.Before(c.rwant) || keepsDeadline(c.rset, t) {
		return nil
	}
	return c.setRead(t)
}

// parkDue reports whether a wait that may park at parkAt parks now: the
// time has come, and the deadline asked for has not passed.
func (c *serverConn) parkDue(parkAt time.Time) bool {
	now := time.Now()
	return !now.Before(parkAt) && (c.rwant.IsZero() || now.Before(c.rwant))
}

// waitRead writes the held response and waits for the next request under
// the probe deadline, then the idle one.
func (c *serverConn) waitRead(p []byte) (int, error) {
	idle := c.idle
	var parkAt time.Time
	if c.canPark() {
		parkAt = c.parkTime(idle)
	}
	probe := c.probeTime(idle, parkAt)
	probing := !probe.Equal(idle)
	if err := c.askProbe(probe); err != nil {
		return 0, err
	}
	phase := phaseWrite
	for {
		n, err, done := c.rawRead(p, phase)
		if done {
			c.bodies.pending = false
			c.waits++
			if c.found {
				c.plain = true // a pipelining client
			}
			return n, err
		}
		if c.werr != nil {
			err, c.werr = c.werr, nil
			return 0, err
		}
		if c.phase == phaseWrite {
			if !c.ran && c.rearmRead(err) {
				continue // the socket's deadline had fired; nothing written yet
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, err
			}
			// The socket did not take the whole response: the rest goes
			// the usual way, then a plain read.
			c.partials++
			if testHookPartial != nil {
				testHookPartial()
			}
			if err := c.flush(); err != nil {
				return 0, err
			}
			if err := c.askRead(idle); err != nil {
				return 0, err
			}
			return c.readNow(p)
		}
		if c.none {
			return c.parkNow() // the probe at the park time found nothing
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, err
		}
		if probing && !time.Now().Before(probe) {
			// The probe expired: read at once under the idle deadline. The
			// connection is idle: large bodies go back. When the probe is
			// the park time, the read that finds nothing parks it at once:
			// a deadline already passed would fail the read before it
			// reads, and park a connection whose next request is there.
			c.bodies.release()
			probing = false
			c.rwant = idle
			if err := c.setRead(idle); err != nil {
				return 0, err
			}
			phase = phaseProbe
			if probe.Equal(parkAt) && c.parkDue(parkAt) {
				phase = phaseProbePark
			} else if err := c.earlier(parkAt); err != nil {
				return 0, err
			}
			continue
		}
		if !probing && !parkAt.IsZero() && c.parkDue(parkAt) {
			return c.parkNow()
		}
		if !c.rearmRead(err) {
			return 0, err
		}
		phase = phaseReadFirst
	}
}

// probeTime returns the probe deadline of a wait for the next request
// whose idle deadline is idle and that parks at parkAt (zero: never).
func (c *serverConn) probeTime(idle, parkAt time.Time) time.Time {
	switch {
	case !parkAt.IsZero() && (idle.IsZero() || parkAt.Before(idle)):
		// It probes, then parks: one wake, not two (phaseProbePark);
		// with the longer park delay, large bodies go back first.
		return earliest(parkAt, c.bodiesProbe(c.bodies.pending, parkAt, idle))
	case c.idleFor > waitProbe && !idle.IsZero():
		return idle.Add(waitProbe - c.idleFor)
	}
	probe := time.Now().Add(waitProbe)
	if !idle.IsZero() && idle.Before(probe) {
		probe = idle
	}
	return probe
}

// rawRead runs one RawConn.Read from phase; done reports that it read.
func (c *serverConn) rawRead(p []byte, phase int) (n int, err error, done bool) {
	c.p, c.n, c.rerr, c.phase = p, 0, nil, phase
	c.ran, c.got, c.found, c.none = false, false, false, false
	err = c.raw.Read(c.step)
	c.p = nil
	if !c.got {
		return 0, err, false
	}
	return c.n, c.rerr, true
}

// run is the RawConn.Read callback.
func (c *serverConn) run(fd uintptr) bool {
	switch c.phase {
	case phaseWrite:
		c.ran = true
		if !c.writeHeld(fd) {
			return true
		}
		c.phase = phaseRead
		return false
	case phaseProbe, phaseProbePark:
		if c.read(fd) {
			c.found = true
			return true
		}
		if c.phase == phaseProbePark {
			c.none = true
			return true
		}
		c.phase = phaseRead
		return false
	}
	return c.read(fd)
}

// writeHeld writes the held response to fd, reporting whether all of it
// went.
func (c *serverConn) writeHeld(fd uintptr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		return true // Close wrote it
	}
	switch errno := c.sendHeldLocked(fd, 0); errno {
	case 0:
		c.releaseLocked()
		return true
	case syscall.EAGAIN:
	default:
		c.werr = os.NewSyscallError("write", errno)
	}
	return false
}

// sendHeldLocked writes the rest of the held response to fd with the send
// flags flags, until all of it went (0), the socket is full (EAGAIN) or
// the write failed.
func (c *serverConn) sendHeldLocked(fd uintptr, flags int) syscall.Errno {
	for c.off < len(c.held.b) {
		n, errno := sysSend(fd, c.held.b[c.off:], flags)
		switch errno {
		case 0:
			c.off += n
		case syscall.EINTR:
		default:
			return errno
		}
	}
	return 0
}

// read reads fd into c.p, reporting false when there was nothing to read.
func (c *serverConn) read(fd uintptr) bool {
	n, err, ok := readFD(fd, c.p)
	if !ok {
		return false
	}
	c.n, c.rerr, c.got = n, err, true
	return true
}

// ReadFrom keeps sendfile for file bodies, after what is held.
func (c *serverConn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.exact(); err != nil {
		return 0, err
	}
	return c.TCPConn.ReadFrom(r)
}

// WriteTo keeps splice for whoever copies from the connection.
func (c *serverConn) WriteTo(w io.Writer) (int64, error) {
	if err := c.exact(); err != nil {
		return 0, err
	}
	return c.TCPConn.WriteTo(w)
}

// CloseWrite sends what is held before the FIN.
func (c *serverConn) CloseWrite() error {
	if err := c.exact(); err != nil {
		return err
	}
	return c.TCPConn.CloseWrite()
}

// Close writes what is held (the last response of a connection fasthttp
// closes, or one Shutdown closes as idle), then closes.
func (c *serverConn) Close() error {
	if c.parking.Load() && c.park(c.rwant) {
		return nil
	}
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.flushClosingLocked() //nolint:errcheck // closing anyway
	}
	c.mu.Unlock()
	defer c.uncount()
	return c.TCPConn.Close()
}

// flushClosingLocked writes what is held just before the close, with
// MSG_MORE: the kernel keeps the response's last segment back, and
// close(2) sets FIN on it, so the response and the FIN leave as one
// segment. On a Connection: close request that is one segment (and the
// client's ACK of it) fewer through both TCP stacks: 8 instead of 10.
func (c *serverConn) flushClosingLocked() error {
	if c.held == nil {
		return nil
	}
	var werr error
	step := func(fd uintptr) bool {
		switch errno := c.sendHeldLocked(fd, syscall.MSG_MORE); errno {
		case 0:
		case syscall.EAGAIN:
			if testHookPartial != nil {
				testHookPartial()
			}
			return false
		default:
			werr = os.NewSyscallError("sendto", errno)
		}
		return true
	}
	err := c.raw.Write(step)
	for err != nil && c.rearmWrite(err) {
		err = c.raw.Write(step)
	}
	c.releaseLocked()
	if err != nil {
		return err
	}
	return werr
}
