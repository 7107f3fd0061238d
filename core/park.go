package core

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// An idle keep-alive connection inside fasthttp's loop keeps a goroutine
// grown by the request path, fasthttp's read and write buffers and its
// request context: 22.9 KB of resident memory, where nginx keeps 0.5 KB
// (make bench's idle-connection phase; 4.3 KB parked). A connection that has waited
// parkAfter for its next request is parked instead: its Read ends
// fasthttp's loop as if the client had closed (errParked, nothing read:
// fasthttp gives back the context and buffers and ends quietly), its
// Close keeps the socket open, and a fresh goroutine waits for the next
// request's first bytes on the poller, under the idle deadline fasthttp
// asked for. When they come, the connection goes back to fasthttp through
// Server.ServeConn, which serves it as a new connection. A busy connection
// never parks; a parked one costs the socket, serverConn and a small
// goroutine.
//
// Only a connection fasthttp serves as it was accepted parks (not through
// max_conns_per_ip's or h2c's wrappers), and none when
// server.max_requests_per_conn is set (ServeConn would count its requests
// afresh). Shutdown closes parked connections as fasthttp closes idle
// ones.

// parkAfter is how long a keep-alive connection waits for its next
// request in fasthttp's loop before it is parked.
var parkAfter = time.Second

// errParked is what the Read of a connection being parked returns.
var errParked = errors.New("idle keep-alive connection parked")

// testHookParked and testHookUnparked, when set by a test, run when a
// connection was parked and when it goes back to fasthttp.
var testHookParked, testHookUnparked func()

// parkSet is a listener's parked connections.
type parkSet struct {
	serve  func(net.Conn) error // fasthttp's Server.ServeConn
	mu     sync.Mutex
	conns  map[*serverConn]struct{}
	closed bool
}

func newParkSet(serve func(net.Conn) error) *parkSet {
	return &parkSet{serve: serve, conns: make(map[*serverConn]struct{})}
}

// add parks c, or reports false once the set is closed.
func (s *parkSet) add(c *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// remove takes c out, or reports false when close took it.
func (s *parkSet) remove(c *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return false
	}
	delete(s.conns, c)
	return true
}

// close closes every parked connection, and every one parked later.
func (s *parkSet) close() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		c.closeNow()
	}
}

// len returns how many connections are parked.
func (s *parkSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// canPark reports whether the wait Read is starting is one for a new
// request on a connection that may park.
func (c *serverConn) canPark() bool {
	return c.parks != nil && c.parkable && c.between
}

// parkTime returns when a wait for a new request that starts now parks:
// parkAfter after it started, which is the idle deadline fasthttp has just
// asked for less idleFor (no clock read on the request path).
func (c *serverConn) parkTime(idle time.Time) time.Time {
	if !idle.IsZero() && c.idleFor > 0 {
		return idle.Add(parkAfter - c.idleFor)
	}
	return time.Now().Add(parkAfter)
}

// parkNow ends the Read of a connection to be parked: fasthttp's loop
// ends, and its Close parks the connection.
func (c *serverConn) parkNow() (int, error) {
	c.parking.Store(true)
	return 0, errParked
}

// park is Close for a connection being parked: false when it is to be
// closed after all (Shutdown has closed the set). The goroutine that
// waits starts at StateClosed (parked), which fasthttp reports right
// after Close in the same goroutine: the connection is fasthttp's until
// then.
func (c *serverConn) park() bool {
	if !c.parking.CompareAndSwap(true, false) || !c.parks.add(c) {
		return false
	}
	c.sleepNext.Store(true)
	return true
}

// parked starts the wait of a connection park took, at StateClosed.
func (c *serverConn) parked() {
	if !c.sleepNext.CompareAndSwap(true, false) {
		return
	}
	if testHookParked != nil {
		testHookParked()
	}
	go c.sleep()
}

// sleep waits, in a goroutine of its own, for the first bytes of the
// parked connection's next request, then serves the connection again.
func (c *serverConn) sleep() {
	err := c.setRead(c.rwant) // the idle deadline fasthttp asked for
	if err == nil {
		if c.peekStep == nil {
			c.peekStep = c.peek
		}
		c.peekErr = nil
		err = c.raw.Read(c.peekStep)
	}
	if !c.parks.remove(c) {
		return // closed by Shutdown
	}
	if err != nil || c.peekErr != nil {
		c.closeNow() // idle too long, or the client closed
		return
	}
	if testHookUnparked != nil {
		testHookUnparked()
	}
	c.parks.serve(c) //nolint:errcheck // as fasthttp's own workers: the connection is closed, or parked again
}

// peek is sleep's RawConn.Read callback: true once the socket has a byte
// to read (left there) or an error.
func (c *serverConn) peek(fd uintptr) bool {
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

// closeNow closes the socket of a parked connection.
func (c *serverConn) closeNow() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.TCPConn.Close() //nolint:errcheck // closing an idle connection
}
