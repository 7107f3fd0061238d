package core

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// fasthttp's server sets up to three deadlines per keep-alive request (the
// idle wait, the read, the write), and every set modifies a runtime timer:
// a few percent of a proxied request's CPU. Consecutive requests on a
// connection move the deadlines later, so lazyConn arms a later deadline
// only when the armed one passes: a read or write that fails with the armed
// deadline while a later one is wanted arms that one and goes on. An
// earlier deadline is armed at once. Deadlines fire exactly as asked; a
// busy connection arms a timer about once per timeout instead of three per
// request.

// lazyListener wraps accepted TCP connections in lazyConn.
type lazyListener struct{ net.Listener }

func (l lazyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return &lazyConn{TCPConn: tc}, nil
	}
	return c, nil
}

// lazyConn is a client connection with lazily armed deadlines. Deadlines
// may be set from any goroutine; reads and writes are each one goroutine's,
// as for any net.Conn.
type lazyConn struct {
	*net.TCPConn
	rd, wd lazyDeadline
}

// lazyDeadline is one direction's deadline, in Unix nanoseconds; 0 is none.
type lazyDeadline struct {
	want  atomic.Int64 // asked for by the last Set
	armed atomic.Int64 // set on the connection
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// set records t and reports whether it must be armed now: when it is
// earlier than the armed one (or none is armed). A later deadline, or none,
// waits until the armed one passes.
func (d *lazyDeadline) set(t time.Time) (arm bool) {
	n := unixNano(t)
	d.want.Store(n)
	a := d.armed.Load()
	if n != 0 && (a == 0 || n < a) {
		d.armed.Store(n)
		return true
	}
	return false
}

// expired is called when an operation failed with the armed deadline. It
// reports whether the wanted deadline lies later, and then arms it.
func (d *lazyDeadline) expired(arm func(time.Time) error) bool {
	w := d.want.Load()
	if w != 0 && time.Now().UnixNano() >= w {
		return false // the deadline asked for has passed too
	}
	d.armed.Store(w)
	t := time.Time{}
	if w != 0 {
		t = time.Unix(0, w)
	}
	return arm(t) == nil
}

func (c *lazyConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *lazyConn) SetReadDeadline(t time.Time) error {
	if c.rd.set(t) {
		return c.TCPConn.SetReadDeadline(t)
	}
	return nil
}

func (c *lazyConn) SetWriteDeadline(t time.Time) error {
	if c.wd.set(t) {
		return c.TCPConn.SetWriteDeadline(t)
	}
	return nil
}

func (c *lazyConn) Read(p []byte) (int, error) {
	for {
		n, err := c.TCPConn.Read(p)
		if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !c.rd.expired(c.TCPConn.SetReadDeadline) {
			return n, err
		}
	}
}

func (c *lazyConn) Write(p []byte) (int, error) {
	written := 0
	for {
		n, err := c.TCPConn.Write(p[written:])
		written += n
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !c.wd.expired(c.TCPConn.SetWriteDeadline) {
			return written, err
		}
	}
}
