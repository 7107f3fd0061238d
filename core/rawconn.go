package core

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// An upstream exchange written the usual Go way writes the request, then
// reads the response: the read comes before the upstream has answered, so
// it returns EAGAIN and only then does the goroutine wait for the poller.
// That is one wasted syscall per request, a few percent of a proxied
// request's CPU. send instead leaves the serialized request on the
// connection, and the response's first Read writes it from inside
// syscall.RawConn.Read, whose callback runs after the poller's readiness
// for the fd has been reset: returning false there waits for the response
// without reading, and no readiness can be missed because the response can
// only arrive after the write. The same callback then reads the response,
// so the request costs one RawConn.Read, not one to write and one to read.

// rawTCPConn is an upstream TCP connection with its RawConn, obtained once
// per connection (SyscallConn allocates), and the deadline last set on it.
type rawTCPConn struct {
	*net.TCPConn
	raw      syscall.RawConn
	deadline time.Time

	// out, left by send, is a request the next Read writes before it
	// waits for the response; werr, once writing it failed, is what every
	// later Read returns (the connection is closed after it).
	out  *rawSend
	werr error

	// One Read: its buffer and result, and readStep (c.readOnce), made once.
	rp       []byte
	rn       int
	rerr     error
	readStep func(fd uintptr) bool
}

// Read reads like net.TCPConn's Read, waiting on the poller the same way,
// but with sysRead: the response read is on every request's path. A
// request send left is written first, in the same RawConn.Read.
func (c *rawTCPConn) Read(p []byte) (int, error) {
	for {
		if c.werr != nil {
			return 0, c.werr
		}
		c.rp = p
		err := c.raw.Read(c.readStep)
		c.rp = nil
		if s := c.out; s != nil {
			c.out = nil
			if !s.wrote || s.err != nil || s.off < len(s.buf) {
				// The write did not finish in the callback: the deadline
				// had passed, it failed, or the socket took only part.
				c.werr = c.finishWrite(s, err)
				s.release()
				if c.werr != nil {
					return 0, c.werr
				}
				continue // written the usual way: now read the response
			}
			s.release()
		}
		if err != nil {
			return 0, err
		}
		n, rerr := c.rn, c.rerr
		c.rerr = nil
		return n, rerr
	}
}

// finishWrite ends a write of s the callback did not finish: err is the
// RawConn.Read's error when the callback never ran.
func (c *rawTCPConn) finishWrite(s *rawSend, err error) error {
	switch {
	case !s.wrote:
		if err == nil {
			err = net.ErrClosed
		}
		return err
	case s.err != nil:
		return &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("write", s.err)}
	}
	if testHookSendPartial != nil {
		testHookSendPartial()
	}
	_, err = c.TCPConn.Write(s.buf[s.off:])
	return err
}

// testHookSendPartial, when set by a test, runs when the socket took only
// part of a request send left.
var testHookSendPartial func()

// sendError returns the error writing the request send left on conn, if
// that is what failed.
func sendError(conn net.Conn) error {
	if c, ok := conn.(*rawTCPConn); ok {
		return c.werr
	}
	return nil
}

// readOnce is the RawConn.Read callback of Read: it writes a request send
// left and waits, then reads.
func (c *rawTCPConn) readOnce(fd uintptr) bool {
	if s := c.out; s != nil && !s.wrote {
		return s.run(fd)
	}
	n, err, ok := readFD(fd, c.rp)
	if !ok {
		return false
	}
	if err != nil && err != io.EOF {
		err = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	c.rn, c.rerr = n, err
	return true
}

// maxDeadlineSlack bounds how much later than asked a deadline may fire.
const maxDeadlineSlack = 100 * time.Millisecond

// setDeadline sets the deadline of one attempt on conn. Setting a deadline
// modifies two runtime timers (read and write), a few percent of a
// proxied request's CPU, and consecutive requests on a connection ask for
// nearly the same one. So a deadline is set a little late, by 1/16 of the
// attempt's time (at most 100ms), and kept while it lies between the asked
// deadline and that slack: a timeout fires at most that much late, and a
// busy connection resets its timers a few times a second instead of on
// every request. A shorter timeout always sets its own.
func setDeadline(conn net.Conn, now, d time.Time) error {
	c, ok := conn.(*rawTCPConn)
	if !ok {
		return conn.SetDeadline(d)
	}
	slack := min(d.Sub(now)/16, maxDeadlineSlack)
	if !c.deadline.Before(d) && c.deadline.Sub(d) <= slack {
		return nil
	}
	c.deadline = d.Add(slack)
	return c.TCPConn.SetDeadline(c.deadline)
}

// SetDeadline, SetReadDeadline and SetWriteDeadline are for everyone else
// who sets a deadline on the connection (fasthttp's health-check requests,
// streamed body reads): the kept deadline is forgotten, so the next
// attempt sets its own.
func (c *rawTCPConn) SetDeadline(t time.Time) error {
	c.deadline = time.Time{}
	return c.TCPConn.SetDeadline(t)
}

func (c *rawTCPConn) SetReadDeadline(t time.Time) error {
	c.deadline = time.Time{}
	return c.TCPConn.SetReadDeadline(t)
}

func (c *rawTCPConn) SetWriteDeadline(t time.Time) error {
	c.deadline = time.Time{}
	return c.TCPConn.SetWriteDeadline(t)
}

// dialRaw dials addr and keeps the connection's RawConn.
func dialRaw(d *fasthttp.TCPDialer, addr string, timeout time.Duration) (net.Conn, error) {
	c, err := d.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	tc, raw, ok := rawTCP(c)
	if !ok {
		return c, nil
	}
	rc := &rawTCPConn{TCPConn: tc, raw: raw}
	rc.readStep = rc.readOnce
	return rc, nil
}

// maxRawRequest bounds the requests send writes from its own buffer; larger
// ones take the bufio path.
const maxRawRequest = 16 << 10

// rawSend is the pooled state of one send.
type rawSend struct {
	buf   []byte
	off   int
	err   error
	wrote bool
}

var rawSendPool = sync.Pool{New: func() any { return &rawSend{buf: make([]byte, 0, 1024)} }}

// Write collects the serialized request (io.Writer for Request.WriteTo).
func (r *rawSend) Write(p []byte) (int, error) {
	r.buf = append(r.buf, p...)
	return len(p), nil
}

// run writes the request from the RawConn.Read callback: false when all of
// it went (wait for the response), true when the socket took only part of
// it or the write failed.
func (r *rawSend) run(fd uintptr) bool {
	r.wrote = true
	for r.off < len(r.buf) {
		n, errno := sysWrite(fd, r.buf[r.off:])
		switch errno {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return true
		default:
			r.err = errno
			return true
		}
		r.off += n
	}
	return false
}

// send writes req to conn. On a plain TCP connection it only serializes
// req: the response's first Read writes it (see rawTCPConn.Read), and an
// error writing it comes back from that Read and from sendError.
func (t *target) send(conn net.Conn, req *fasthttp.Request) error {
	rc, ok := conn.(*rawTCPConn)
	if !ok || req.IsBodyStream() || len(req.Body()) > maxRawRequest {
		return t.sendBufio(conn, req)
	}
	r := rawSendPool.Get().(*rawSend)
	if _, err := req.WriteTo(r); err != nil {
		r.release()
		return err
	}
	rc.out, rc.werr = r, nil
	return nil
}

func (r *rawSend) release() {
	if cap(r.buf) > 4*maxRawRequest {
		r.buf = make([]byte, 0, 1024)
	}
	r.buf, r.off, r.err, r.wrote = r.buf[:0], 0, nil, false
	rawSendPool.Put(r)
}

// sendBufio writes req through the HostClient's pooled bufio.Writer.
func (t *target) sendBufio(conn net.Conn, req *fasthttp.Request) error {
	bw := t.hc.AcquireWriter(conn)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	t.hc.ReleaseWriter(bw)
	return err
}
