package core

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// An idle keep-alive connection inside fasthttp's loop keeps a goroutine
// grown by the request path, fasthttp's read and write buffers and its
// request context: 22.9 KB of resident memory, where nginx keeps 0.5 KB
// (make bench's idle-connection phase). A connection that has waited
// parkAfter for its next request is parked instead: its Read ends
// fasthttp's loop as if the client had closed (errParked, nothing read:
// fasthttp gives back the context and buffers and ends quietly), its
// Close keeps the socket open, and the listener's parkSet waits for the
// next request's first bytes with no goroutine of the connection's own,
// until the idle deadline fasthttp asked for. When they come, the
// connection goes back to fasthttp through Server.ServeConn, which serves
// it as a new connection. A busy connection never parks; a parked one
// costs the socket and serverConn.
//
// Only a connection fasthttp serves as it was accepted parks (not through
// h2c's wrapper; server.max_conns_per_ip is counted by the listener,
// perip.go, not by fasthttp's wrapper). ServeConn counts a connection's
// requests afresh each time it serves it again, so a connection that
// parks counts its own for server.max_requests_per_conn (countRequest).
// Shutdown closes parked connections as fasthttp closes idle ones.

// parkAfter is how long a keep-alive connection waits for its next
// request in fasthttp's loop before it is parked.
var parkAfter = time.Second

// A client that comes back soon after its connection parked pays a park
// and an unpark for each request and saves little memory for it: with a
// request every 2.5 s the connection was parked 1.5 s of each 2.5, and the
// two cost about a fifth of the CPU of each request (1,000 such clients:
// 150-181 µs per request parking, 125-141 not), while the unpark workers
// that served those connections held most of the memory the parks freed.
// So a connection whose client came back less than parkDelaySlow times
// parkAfter after its previous request waits that long before it parks
// next, as long as its client keeps that pace; one that stayed away
// longer goes back to parkAfter. Clients that send a request every few
// seconds keep their connection unparked, with its 23 KB; those idle
// longer park as before. Large bodies still go back after parkAfter
// (bodiesProbe); the wait also bounds how long a pipelining client whose
// request it missed waits, once (serverConn.waitRead).
const parkDelaySlow = 4

// parkDelay returns how long c waits for its next request before it
// parks.
func (c *parker) parkDelay() time.Duration {
	if c.slow {
		return parkDelaySlow * parkAfter
	}
	return parkAfter
}

// unparkedAt sets c's park delay for its next wait: c came back at now
// from the park that began at c.parkedAt, its park delay after its
// previous request.
func (c *parker) unparkedAt(now time.Time) {
	c.slow = now.Sub(c.parkedAt)+c.parkDelay() < parkDelaySlow*parkAfter
}

// errParked is what the Read of a connection being parked returns.
var errParked = errors.New("idle keep-alive connection parked")

// parker is the parking state of an accepted connection: serverConn
// (plain TCP) and tlsServerConn embed it.
type parker struct {
	conn    parkedConn      // the connection it is part of
	parks   *parkSet        // the listener's set; nil: never parks
	sock    syscall.RawConn // the connection's socket
	idleFor time.Duration   // the server's idle timeout

	// parkable is set once fasthttp serves the connection as accepted,
	// unwrapped; between is set from the end of a response (StateIdle) to
	// the start of the next request (StateActive); parking from the Read
	// that ends fasthttp's loop to the Close that parks; sleepNext from
	// that Close to StateClosed, which starts the wait.
	parkable, between  bool
	parking, sleepNext atomic.Bool

	// slow is set while the connection's client comes back soon after it
	// parks: it waits parkDelaySlow times parkAfter (parkDelay).
	slow bool

	// requests counts the requests served on the connection, across its
	// parks; maxRequests is server.max_requests_per_conn (0: unlimited).
	requests, maxRequests int

	// perIP, when set, counts the connection against its client ip
	// (server.max_conns_per_ip) until uncount.
	perIP     *perIPConns
	ip        netip.Addr
	uncounted atomic.Bool

	// While parked (guarded by the set's mu; fd set once): the socket,
	// whether the set's epoll instance has it, the idle deadline and the
	// set's deadline-ordered list.
	fd                 int
	hasFD, inEpoll     bool
	parkDeadline       time.Time
	parkedAt           time.Time
	parkPrev, parkNext *parker
	peekBuf            [1]byte
	peekErr            error
}

// parkedConn is a connection that parks: fasthttp serves it again as it
// is, after unparked; closeNow closes it for good.
type parkedConn interface {
	net.Conn
	unparked()
	closeNow()
}

// testHookParked, testHookUnparked and testHookParkClosed, when set by a
// test, run when a connection was parked, when it goes back to fasthttp,
// and when the set closed it (the client closed it, or it stayed idle).
var testHookParked, testHookUnparked, testHookParkClosed func()

// testHookUnparkIdle, when set by a test before its park set is made, runs
// when an unpark worker of that set waits for its next connection.
var testHookUnparkIdle func()

// parkSet is a listener's parked connections. They cost no goroutine:
// one waiter per set waits on an epoll instance of its own, itself on
// Go's poller, where each parked socket is registered one-shot for its
// next bytes; the waiter also closes those whose idle deadline passed.
type parkSet struct {
	serve func(net.Conn) error // fasthttp's Server.ServeConn
	ep    *os.File             // the epoll instance, on Go's poller
	epRaw syscall.RawConn

	mu    sync.Mutex
	conns map[int]*parker // by socket
	// first and last list the parked connections that have an idle
	// deadline, in park order, which is deadline order: a listener's
	// connections share one idle timeout.
	first, last *parker
	deadline    time.Time     // the waiter's, set under mu
	waiting     bool          // the waiter started
	done        chan struct{} // closed when the waiter ends
	// work hands an unparked connection to an idle unpark worker (one
	// waiting on it); quit, closed with the set, ends the idle ones.
	work chan *parker
	quit chan struct{}
	// idle counts the unpark workers waiting on work that no dispatch has
	// claimed. A dispatch that claims one sends it the connection, so a
	// worker that has said it is idle is used, not passed over for a new
	// goroutine while it is still on its way to the receive; a worker
	// whose wait ends claims itself out, or takes the connection a
	// dispatch that claimed it is sending.
	idle atomic.Int32
	// onIdleWorker is testHookUnparkIdle when the set was made: workers
	// outlive their set a little, and must not read a later test's hook.
	onIdleWorker func()
	closed       bool

	// The waiter's own.
	events [64]syscall.EpollEvent
	nev    int
	perr   error
	step   func(fd uintptr) bool
}

// newParkSet returns a set whose connections are served again by serve,
// or nil (no parking) when no epoll instance can be made.
func newParkSet(serve func(net.Conn) error) *parkSet {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	// Non-blocking, so that os.NewFile puts it on Go's poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd) //nolint:errcheck // giving up on it
		return nil
	}
	ep := os.NewFile(uintptr(fd), "parked-conns")
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close() //nolint:errcheck // giving up on it
		return nil
	}
	s := &parkSet{serve: serve, ep: ep, epRaw: raw, conns: make(map[int]*parker), done: make(chan struct{}),
		work: make(chan *parker), quit: make(chan struct{}), onIdleWorker: testHookUnparkIdle}
	s.step = s.poll
	return s
}

// add parks c until idle (the idle deadline fasthttp asked for), or
// reports false once the set is closed.
func (s *parkSet) add(c *parker, idle time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if !c.hasFD {
		c.sock.Control(func(fd uintptr) { c.fd, c.hasFD = int(fd), true }) //nolint:errcheck // hasFD set unless closed
		if !c.hasFD {
			return false
		}
	}
	s.conns[c.fd] = c
	c.parkDeadline, c.parkedAt = idle, time.Now()
	if !c.parkDeadline.IsZero() {
		c.parkPrev, c.parkNext = s.last, nil
		if s.last != nil {
			s.last.parkNext = c
		} else {
			s.first = c
		}
		s.last = c
	}
	return true
}

// arm starts the wait for c's next bytes, once fasthttp is done with it
// (StateClosed).
func (s *parkSet) arm(c *parker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c.fd] != c {
		return // closed by Shutdown since
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(c.fd)}
	op := syscall.EPOLL_CTL_MOD // registered by an earlier park, disarmed
	if !c.inEpoll {
		op = syscall.EPOLL_CTL_ADD
	}
	var err error
	s.epRaw.Control(func(epfd uintptr) { err = syscall.EpollCtl(int(epfd), op, c.fd, &ev) }) //nolint:errcheck // err set
	if err != nil {
		s.takeLocked(c)
		c.conn.closeNow() // cannot wait for it: close it as idle
		return
	}
	c.inEpoll = true
	if !c.parkDeadline.IsZero() && (s.deadline.IsZero() || c.parkDeadline.Before(s.deadline)) {
		s.setDeadlineLocked(c.parkDeadline)
	}
	if !s.waiting {
		s.waiting = true
		go s.wait()
	}
}

// setDeadlineLocked moves the waiter's deadline to t.
func (s *parkSet) setDeadlineLocked(t time.Time) {
	s.deadline = t
	s.ep.SetReadDeadline(t) //nolint:errcheck // only fails once closed
}

// takeLocked takes c out of the set.
func (s *parkSet) takeLocked(c *parker) {
	delete(s.conns, c.fd)
	if c.parkDeadline.IsZero() {
		return
	}
	if c.parkPrev != nil {
		c.parkPrev.parkNext = c.parkNext
	} else {
		s.first = c.parkNext
	}
	if c.parkNext != nil {
		c.parkNext.parkPrev = c.parkPrev
	} else {
		s.last = c.parkPrev
	}
	c.parkPrev, c.parkNext = nil, nil
}

// wait is the set's waiter: it serves again the connections whose next
// bytes came, and closes those past their idle deadline, until the set
// closes.
func (s *parkSet) wait() {
	defer close(s.done)
	for {
		err := s.epRaw.Read(s.step)
		switch {
		case err == nil && s.perr != nil:
			s.shut() // cannot wait any more: close them as idle
			return
		case err == nil:
			s.dispatch()
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.sweep()
		default:
			return // closed
		}
	}
}

// poll is the waiter's RawConn.Read callback: true once events are in,
// or epoll_wait failed (perr).
func (s *parkSet) poll(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, fd, uintptr(unsafe.Pointer(&s.events[0])), uintptr(len(s.events)), 0, 0, 0)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			s.nev, s.perr = 0, errno
			return true
		}
		s.nev = int(n)
		return n > 0
	}
}

// dispatch hands back to fasthttp each connection whose next bytes came,
// and closes those the client closed.
func (s *parkSet) dispatch() {
	now := time.Now()
	for i := 0; i < s.nev; i++ {
		fd := int(s.events[i].Fd)
		s.mu.Lock()
		c := s.conns[fd]
		if c != nil {
			s.takeLocked(c)
		}
		s.mu.Unlock()
		if c == nil {
			continue // taken by Shutdown
		}
		// Readable without the peer's hang-up or an error, the next
		// request's bytes are there: nothing to look at. Otherwise a peek
		// tells bytes still to serve (a last request before the FIN) from
		// a client that closed.
		c.peekErr = nil
		if !dataOnly(s.events[i].Events) {
			c.peek(uintptr(fd))
		}
		if c.peekErr != nil {
			c.conn.closeNow() // the client closed, or the socket failed
			if testHookParkClosed != nil {
				testHookParkClosed()
			}
			continue
		}
		c.unparkedAt(now)
		if testHookUnparked != nil {
			testHookUnparked()
		}
		if s.claimIdle() {
			select {
			case s.work <- c:
				continue
			case <-s.quit:
			}
		}
		go s.unparkWorker(c)
	}
	s.nev = 0
}

// claimIdle takes one idle unpark worker out of s.idle, or reports false
// when there is none.
func (s *parkSet) claimIdle() bool {
	for {
		n := s.idle.Load()
		if n == 0 {
			return false
		}
		if s.idle.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// dataOnly reports whether the epoll events of a parked connection say
// only that bytes came: not the peer's hang-up (EPOLLRDHUP, EPOLLHUP) or
// an error, which the connection's peek tells apart from a last request.
func dataOnly(ev uint32) bool {
	return ev&syscall.EPOLLIN != 0 && ev&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) == 0
}

// unparkWorkerIdle is how long an unpark worker waits for its next
// connection before it ends (fasthttp's idle workers wait as long).
const unparkWorkerIdle = 10 * time.Second

// unparkWorker serves c again, as a new connection, then each one handed
// to it while it waits, until it has waited unparkWorkerIdle for none or
// the set closes. A worker keeps the stack the request path grew: a
// goroutine per unpark grew its own afresh, copying it three or four
// times, which cost more than the rest of the unpark.
func (s *parkSet) unparkWorker(c *parker) {
	idle := time.NewTimer(unparkWorkerIdle)
	defer idle.Stop()
	for {
		c.conn.unparked()
		s.serve(c.conn) //nolint:errcheck // as fasthttp's own workers: the connection is closed, or parked again
		idle.Reset(unparkWorkerIdle)
		s.idle.Add(1)
		if s.onIdleWorker != nil {
			s.onIdleWorker()
		}
		select {
		case c = <-s.work:
		case <-idle.C:
			if s.claimIdle() {
				return
			}
			// A dispatch claimed this worker: its connection comes.
			select {
			case c = <-s.work:
			case <-s.quit:
				return
			}
		case <-s.quit:
			return
		}
	}
}

// sweep closes the connections whose idle deadline passed, and moves the
// waiter's deadline to the next one.
func (s *parkSet) sweep() {
	now := time.Now()
	var idle []*parker
	s.mu.Lock()
	for c := s.first; c != nil && !c.parkDeadline.After(now); c = s.first {
		s.takeLocked(c)
		idle = append(idle, c)
	}
	next := time.Time{}
	if s.first != nil {
		next = s.first.parkDeadline
	}
	s.setDeadlineLocked(next)
	s.mu.Unlock()
	for _, c := range idle {
		c.conn.closeNow()
		if testHookParkClosed != nil {
			testHookParkClosed()
		}
	}
}

// close closes every parked connection, and every one parked later,
// and returns once the waiter has ended.
func (s *parkSet) close() {
	if s.shut() {
		<-s.done
	}
}

// shut closes the set and its connections, and reports whether the
// waiter was started.
func (s *parkSet) shut() bool {
	s.mu.Lock()
	if !s.closed {
		close(s.quit) // the idle unpark workers end
	}
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.first, s.last = nil, nil
	waiting := s.waiting
	s.mu.Unlock()
	s.ep.Close() //nolint:errcheck // the waiter ends
	for _, c := range conns {
		c.conn.closeNow()
	}
	return waiting
}

// len returns how many connections are parked.
func (s *parkSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// countRequest counts the request whose response ctx holds: the one that
// reaches maxRequests closes the connection (fasthttp's count of it
// restarts with each unpark).
func (c *parker) countRequest(ctx *fasthttp.RequestCtx) {
	c.requests++
	if c.maxRequests > 0 && c.requests >= c.maxRequests {
		ctx.SetConnectionClose()
	}
}

// canPark reports whether the wait Read is starting is one for a new
// request on a connection that may park.
func (c *parker) canPark() bool {
	return c.parks != nil && c.parkable && c.between
}

// parkTime returns when a wait for a new request that starts now parks:
// the park delay after it started, which is the idle deadline fasthttp has
// just asked for less idleFor (no clock read on the request path).
func (c *parker) parkTime(idle time.Time) time.Time {
	return c.waitTime(idle, c.parkDelay())
}

// bodiesProbe returns when a wait for a new request whose idle deadline is
// idle and that parks at parkAt (zero: never) gives back its large bodies
// (idlebody.go) before then: waitProbe from now when it does not park,
// parkAfter after it started when its park delay is the longer one, and
// zero when it gives them back as it parks or has none (pending false).
func (c *parker) bodiesProbe(pending bool, parkAt, idle time.Time) time.Time {
	switch {
	case !pending:
		return time.Time{}
	case parkAt.IsZero():
		return time.Now().Add(waitProbe)
	case c.slow:
		return c.waitTime(idle, parkAfter)
	}
	return time.Time{}
}

// waitTime returns the time d after the start of the wait whose idle
// deadline is idle, on parkTick's grid.
func (c *parker) waitTime(idle time.Time, d time.Duration) time.Time {
	if !idle.IsZero() && c.idleFor > 0 {
		return parkTick(idle.Add(d - c.idleFor))
	}
	return parkTick(time.Now().Add(d))
}

// parkTick rounds t up to the next multiple of parkAfter/4 on the clock,
// so that the connections that went idle within the same quarter park at
// the same instant: one wake of the runtime parks them all. With many
// clients that each send a request now and then, a wake of its own per
// park cost more than the park itself.
func parkTick(t time.Time) time.Time {
	g := int64(parkAfter / 4)
	if g <= 0 {
		return t
	}
	if r := t.UnixNano() % g; r != 0 {
		t = t.Add(time.Duration(g - r)) // Add keeps the monotonic reading
	}
	return t
}

// parkNow ends the Read of a connection to be parked: fasthttp's loop
// ends, and its Close parks the connection.
func (c *parker) parkNow() (int, error) {
	c.parking.Store(true)
	return 0, errParked
}

// park is Close for a connection being parked: false when it is to be
// closed after all (Shutdown has closed the set). The goroutine that
// waits starts at StateClosed (parked), which fasthttp reports right
// after Close in the same goroutine: the connection is fasthttp's until
// then.
func (c *parker) park(idle time.Time) bool {
	if !c.parking.CompareAndSwap(true, false) || !c.parks.add(c, idle) {
		return false
	}
	c.sleepNext.Store(true)
	return true
}

// parked starts the wait of a connection park took, at StateClosed.
func (c *parker) parked() {
	if !c.sleepNext.CompareAndSwap(true, false) {
		return
	}
	if testHookParked != nil {
		testHookParked()
	}
	c.parks.arm(c)
}

// peek reports whether the socket of a parked connection has a byte to
// read (left there) or an error (in peekErr).
func (c *parker) peek(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.peekBuf[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return false
		case errno != 0:
			c.peekErr = errno
		case n == 0:
			c.peekErr = io.EOF
		}
		return true
	}
}

// unparked readies c to be served again: fasthttp sets the deadlines it
// wants.
func (c *serverConn) unparked() {
	c.setRead(time.Time{}) //nolint:errcheck // a closed socket fails the next read
}

// closeNow closes the socket of a parked connection.
func (c *serverConn) closeNow() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.TCPConn.Close() //nolint:errcheck // closing an idle connection
	c.uncount()
}
