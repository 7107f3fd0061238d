package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// The open model sends each arrival from the dispatcher itself, on the
// keep-alive connection that went idle last (LIFO: after a stall opened
// extra connections, the few the rate needs carry it and the rest idle),
// and each connection has a reader goroutine that reads its responses.
// Every connection is a VU: max_vus bounds them, and an arrival that
// finds none idle and max_vus open is dropped.
//
// A generator has to cost less than what it measures. Handing every
// arrival to a VU goroutine that called fasthttp's HostClient cost
// loadgen about 80µs of CPU per request on a 2-core machine: three
// goroutine wake-ups per request (dispatcher to VU, the response, the
// VU's next wait), a read that found nothing before each response, and
// the runtime's thread hand-offs between them, about 7 system calls per
// request. At 9,000 arrivals a second that was nearly a core of the two,
// and the generator, not the proxy, set the tail. Here a request costs
// one write (the request, serialized once per path when the run starts),
// one read after the poller said the response is there, and one wake-up
// of the reader. The reader waits for the next response without
// reading first: it puts its connection back in the idle pool from
// inside syscall.RawConn.Read's callback, after the poller's readiness
// was reset, so the response to a request sent on it a moment later
// cannot be missed.

// Connection states: the dispatcher moves an idle connection to busy when
// it sends on it; the reader moves it back to idle after the response.
// Whoever moves it to dead closes it, and records the request in flight
// as failed when it was busy.
const (
	connIdle int32 = iota
	connBusy
	connDead
)

// openConn is one connection of the open model.
type openConn struct {
	r     *runner
	sh    *shard
	nc    net.Conn
	raw   syscall.RawConn
	br    *bufio.Reader
	resp  fasthttp.Response
	state atomic.Int32
	// due is the intended start of the request in flight, after r.start;
	// path is its path's index.
	due  atomic.Int64
	path atomic.Int32
	// served counts the responses read (by the reader only).
	served int

	// State of one Read, for step (made once).
	step    func(fd uintptr) bool
	publish bool // the next step puts c in the idle pool and waits
	p       []byte
	n       int
	err     error
}

// errUnsolicited is a response nobody asked for: bytes on an idle
// connection, or more after a response.
var errUnsolicited = errors.New("the server sent bytes without a request")

// connPool holds the idle connections, the most recent last.
type connPool struct {
	mu    sync.Mutex
	conns []*openConn
}

func (p *connPool) put(c *openConn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// take returns the most recently idle connection, made busy with a
// request due at off; nil when none is idle. Connections that died while
// idle are dropped on the way.
func (p *connPool) take(off time.Duration) *openConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.conns); n > 0; n = len(p.conns) {
		c := p.conns[n-1]
		p.conns[n-1] = nil
		p.conns = p.conns[:n-1]
		c.due.Store(int64(off)) // before busy: the reader reads it once busy
		if c.state.CompareAndSwap(connIdle, connBusy) {
			return c
		}
	}
	return nil
}

// openModel is the open model's part of a runner.
type openModel struct {
	reqs [][]byte // the request of each path, serialized
	head bool     // HEAD: responses have no body
	// idempotent: a request a closing server cut off is sent again
	// (retry).
	idempotent bool
	dialer     net.Dialer
	pool       connPool

	open     atomic.Int64 // connections open or dialing
	peak     atomic.Int64 // the most at once
	inflight sync.WaitGroup
	readers  sync.WaitGroup

	cmu    sync.Mutex // guards live, shards, free
	live   map[*openConn]struct{}
	shards []*shard // every shard used, for collect
	free   []*shard // shards of closed connections, for new ones
}

// initOpen prepares the requests and the dialer of the open model.
func (r *runner) initOpen() {
	sc := r.sc
	o := &r.om
	o.reqs = serializeRequests(sc, r.host, r.body)
	o.head = sc.Method == fasthttp.MethodHead
	switch sc.Method {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions, fasthttp.MethodPut, fasthttp.MethodDelete, fasthttp.MethodTrace:
		o.idempotent = true
	}
	o.dialer.Timeout = sc.Timeout.D()
	o.live = make(map[*openConn]struct{})
}

// serializeRequests writes the request of each path of sc as it goes on
// the wire; the closed model's HostClient sends the same.
func serializeRequests(sc *Scenario, host string, body []byte) [][]byte {
	var req fasthttp.Request
	req.Header.DisableNormalizing()
	req.URI().DisablePathNormalizing = true
	req.Header.SetMethod(sc.Method)
	req.Header.SetHost(host)
	req.Header.SetUserAgent(userAgent)
	for k, v := range sc.Headers {
		req.Header.Set(k, v)
	}
	if len(body) > 0 {
		req.SetBodyRaw(body)
	}
	reqs := make([][]byte, len(sc.Paths))
	for i, p := range sc.Paths {
		req.SetRequestURI(p)
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		req.Write(w) //nolint:errcheck // into memory
		w.Flush()    //nolint:errcheck
		reqs[i] = b.Bytes()
	}
	return reqs
}

// runOpen dispatches the arrivals of the schedule: each goes out on an
// idle connection, or a new one up to MaxVUs, or is dropped. It returns
// when every request sent has its response or failed, and the
// connections are closed.
func (r *runner) runOpen(ctx context.Context) {
	sc := r.sc
	o := &r.om
	maxConns := int64(sc.MaxVUs())
	sched := newSchedule(sc)
	sl := newSleeper()
	defer sl.close()
	for i := 0; ; i++ {
		off, ok := sched.at(i)
		if !ok {
			break
		}
		due := r.start.Add(off)
		if wait := time.Until(due); wait > 0 {
			if sl.sleep(ctx, wait) != nil {
				break
			}
		} else if ctx.Err() != nil {
			break
		}
		lag := time.Since(due)
		r.lag.Record(lag)
		path := r.nextPath()
		// Counted in flight before a connection is busy with it: its
		// reader may fail it (the server closed it) as soon as it is.
		o.inflight.Add(1)
		if c := o.pool.take(off); c != nil {
			r.tl.sent(off+lag, lag, false)
			c.send(path)
			continue
		}
		if o.open.Load() >= maxConns {
			o.inflight.Done()
			r.dropped.Add(1)
			r.tl.dropped(off + lag)
			continue
		}
		r.tl.sent(off+lag, lag, true)
		if n := o.open.Add(1); n > o.peak.Load() {
			o.peak.Store(n)
		}
		o.readers.Add(1)
		go r.dialSend(off, path)
	}
	o.inflight.Wait()
	o.cmu.Lock()
	idle := slices.Collect(maps.Keys(o.live))
	o.cmu.Unlock()
	for _, c := range idle {
		c.nc.Close() //nolint:errcheck // its reader ends
	}
	o.readers.Wait()
}

// sleepTimer waits d on a Go timer, or until ctx is done.
func sleepTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newConn returns a connection, busy with a request due at off, with a
// shard of its own.
func (r *runner) newConn(off time.Duration) *openConn {
	o := &r.om
	c := &openConn{r: r}
	c.step = c.readStep
	c.due.Store(int64(off))
	c.state.Store(connBusy)
	o.cmu.Lock()
	if n := len(o.free); n > 0 {
		c.sh, o.free = o.free[n-1], o.free[:n-1]
	} else {
		c.sh = new(shard)
		o.shards = append(o.shards, c.sh)
	}
	o.cmu.Unlock()
	return c
}

// dialSend opens a connection for the request of path due at off, sends
// it, and reads the connection's responses until it closes.
func (r *runner) dialSend(off time.Duration, path int) {
	defer r.om.readers.Done()
	c := r.newConn(off)
	nc, err := r.om.dialer.Dial("tcp", r.addr)
	if err != nil {
		c.fail(err)
		return
	}
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		nc.Close() //nolint:errcheck
		c.fail(err)
		return
	}
	c.nc, c.raw = nc, raw
	c.br = bufio.NewReaderSize(c, 4096)
	r.om.cmu.Lock()
	r.om.live[c] = struct{}{}
	r.om.cmu.Unlock()
	if c.send(path) {
		c.readLoop()
	}
}

// send writes the request of path on c, which the caller made busy; false
// when that failed (and was recorded).
func (c *openConn) send(path int) bool {
	c.path.Store(int32(path))
	if err := c.nc.SetDeadline(time.Now().Add(c.r.sc.Timeout.D())); err != nil {
		c.fail(err)
		return false
	}
	if _, err := c.nc.Write(c.r.om.reqs[path]); err != nil {
		c.fail(err)
		return false
	}
	return true
}

// readLoop reads c's responses until c dies.
func (c *openConn) readLoop() {
	timeout := c.r.sc.Timeout.D()
	for {
		if _, err := c.br.Peek(1); err != nil {
			// The deadline of the previous request can expire just as
			// the dispatcher sends the next one: that one's own
			// deadline holds.
			if errors.Is(err, os.ErrDeadlineExceeded) && c.state.Load() == connBusy && c.elapsed() < timeout {
				continue
			}
			if c.retry(err) {
				return
			}
			c.end(err)
			return
		}
		if c.state.Load() != connBusy {
			c.end(errUnsolicited)
			return
		}
		c.resp.SkipBody = c.r.om.head
		err := c.resp.Read(c.br)
		end := time.Now()
		if err != nil {
			c.fail(err)
			return
		}
		code := c.resp.StatusCode()
		ok := code > 0 && code < maxStatus && c.r.expect[code]
		at := end.Sub(c.r.start)
		c.sh.recordResponse(at-time.Duration(c.due.Load()), code, len(c.resp.Body()), ok)
		c.r.tl.ended(at, at-time.Duration(c.due.Load()), false)
		c.served++
		keep := !c.resp.ConnectionClose() && c.br.Buffered() == 0
		c.resp.Reset()
		if !keep {
			c.state.Store(connDead)
			c.r.om.inflight.Done()
			c.close()
			return
		}
		c.state.Store(connIdle)
		c.publish = true // by the next read, once it waits
		c.r.om.inflight.Done()
	}
}

// retry sends c's request again, on a new connection, when the server
// closed c, a keep-alive connection it had answered before, without a
// byte of the response: its close of an idle connection crossed the
// request (a close that came just before c went idle is not seen until
// the next request is sent). HTTP clients do the same for idempotent
// requests (fasthttp's HostClient, browsers). true when it did; the
// request stays in flight, due when it was.
func (c *openConn) retry(err error) bool {
	o := &c.r.om
	if c.served == 0 || !o.idempotent || c.br.Buffered() > 0 ||
		!errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) ||
		!c.state.CompareAndSwap(connBusy, connDead) {
		return false
	}
	o.open.Add(1) // the new connection, before close counts c's end
	o.readers.Add(1)
	go c.r.dialSend(time.Duration(c.due.Load()), int(c.path.Load()))
	c.close()
	return true
}

// elapsed returns the time since the request in flight was due.
func (c *openConn) elapsed() time.Duration {
	return time.Since(c.r.start) - time.Duration(c.due.Load())
}

// end closes c after err: quietly when idle (the server closed a
// connection it had no request on, or the run ended), else as the
// request's failure.
func (c *openConn) end(err error) {
	if c.state.CompareAndSwap(connIdle, connDead) {
		c.close()
		return
	}
	c.fail(err)
}

// fail records err as the failure of c's request in flight and closes c,
// unless c died already.
func (c *openConn) fail(err error) {
	if !c.state.CompareAndSwap(connBusy, connDead) {
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fasthttp.ErrConnectionClosed // as the HostClient says it: a reset
	}
	at := time.Since(c.r.start)
	c.sh.recordError(at-time.Duration(c.due.Load()), err)
	c.r.tl.ended(at, at-time.Duration(c.due.Load()), true)
	c.r.om.inflight.Done()
	c.close()
}

// close closes c, dead, and gives its shard to the next connection.
func (c *openConn) close() {
	o := &c.r.om
	if c.nc != nil {
		c.nc.Close() //nolint:errcheck
	}
	o.open.Add(-1)
	o.cmu.Lock()
	delete(o.live, c)
	o.free = append(o.free, c.sh)
	o.cmu.Unlock()
}

// Read reads c for its bufio.Reader: after the poller reported it
// readable, so a read that would find nothing is not made.
func (c *openConn) Read(p []byte) (int, error) {
	c.p, c.n, c.err = p, 0, nil
	if err := c.raw.Read(c.step); err != nil {
		return 0, err
	}
	return c.n, c.err
}

// readStep is c's syscall.RawConn.Read callback. It runs after the
// poller's readiness was reset: a connection published idle here has its
// next response seen, however soon it comes.
func (c *openConn) readStep(fd uintptr) bool {
	if c.publish {
		c.publish = false
		c.r.om.pool.put(c)
		return false
	}
	if len(c.p) == 0 {
		return true
	}
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.p[0])), uintptr(len(c.p)))
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return false
		case errno != 0:
			c.err = os.NewSyscallError("read", errno)
		case n == 0:
			c.err = io.EOF
		default:
			c.n = int(n)
		}
		return true
	}
}
