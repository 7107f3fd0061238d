package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"fastgate/loadtest"
)

// The floor rows (issue 15) answer "how cheap can a proxy written in Go be
// on this machine": two minimal HTTP/1.1 keep-alive proxies that do what
// nginx's bench config does (forward the request with X-Forwarded-For
// added, relay the response) and nothing else: no routing, no header
// checks, no metrics, no timeouts. They are not gateways and are run only
// when -targets names them.
//
//   - floor-goroutine: a goroutine per client connection over net.Conn,
//     each with its own upstream connection: Go's usual server shape, and
//     fastgate's.
//   - floor-loop: one goroutine on an epoll set (edge-triggered) holding
//     every client and upstream socket, with recvfrom/sendto: the shape of
//     nginx and HAProxy, in Go.
//
// fastgate's row minus floor-goroutine's is what its gateway work and
// fasthttp cost; floor-goroutine's minus floor-loop's is what goroutines
// and the runtime's poller cost per request.
//
// They speak only what the bench sends: requests and responses framed by
// Content-Length (a chunked message closes the connection), responses
// with a body (not to HEAD, not 1xx, 204 or 304).
const (
	targetFloorLoop      = "floor-loop"
	targetFloorGoroutine = "floor-goroutine"
)

// floorEnv, when set in the bench's environment, makes the bench binary run
// a floor proxy instead (startFloor re-executes itself):
// "loop|goroutine LISTEN UPSTREAM".
const floorEnv = "FASTGATE_BENCH_FLOOR"

// floorMain runs the floor proxy spec describes, printing
// "floor listening on ADDR" once it accepts.
func floorMain(spec string, stdout io.Writer) error {
	var mode, listen, upstream string
	if _, err := fmt.Sscan(spec, &mode, &listen, &upstream); err != nil {
		return fmt.Errorf("%s=%q: want \"loop|goroutine LISTEN UPSTREAM\"", floorEnv, spec)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	f := &floor{upstream: upstream}
	fmt.Fprintf(stdout, "floor listening on %s\n", ln.Addr())
	switch mode {
	case "loop":
		return f.serveLoop(ln)
	case "goroutine":
		return f.serveGoroutines(ln)
	}
	return fmt.Errorf("%s: mode %q; want loop or goroutine", floorEnv, mode)
}

// floor is one floor proxy.
type floor struct {
	upstream string
	stopped  atomic.Bool // for tests: serveLoop returns within floorTick
}

// floorTick bounds the loop's epoll wait, so that stop is seen.
const floorTick = 100 * time.Millisecond

// maxFloorMessage bounds a buffered request or response.
const maxFloorMessage = 1 << 20

var errChunked = errors.New("floor: chunked messages are not supported")

// messageEnd returns the length of the whole message (head and
// Content-Length body) at the start of b, or 0 when b does not hold it yet.
func messageEnd(b []byte) (int, error) {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		if len(b) > maxFloorMessage {
			return 0, errors.New("floor: head too large")
		}
		return 0, nil
	}
	head := b[:i+4]
	n := 0
	for line := range bytes.SplitSeq(head[:i], []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, err := strconv.Atoi(string(bytes.TrimSpace(value)))
			if err != nil || v < 0 || v > maxFloorMessage {
				return 0, fmt.Errorf("floor: Content-Length %q", value)
			}
			n = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, errChunked
		}
	}
	if len(b) < len(head)+n {
		return 0, nil
	}
	return len(head) + n, nil
}

// appendForwarded appends the request msg (head and body) with xff, an
// X-Forwarded-For header line, added at the end of the head.
func appendForwarded(dst, msg, xff []byte) []byte {
	i := bytes.Index(msg, []byte("\r\n\r\n")) + 2
	dst = append(dst, msg[:i]...)
	dst = append(dst, xff...)
	return append(dst, msg[i:]...)
}

// xffLine is the X-Forwarded-For header line for peer.
func xffLine(peer net.Addr) []byte {
	host, _, _ := net.SplitHostPort(peer.String())
	return []byte("X-Forwarded-For: " + host + "\r\n")
}

// serveGoroutines is floor-goroutine.
func (f *floor) serveGoroutines(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go f.relay(c)
	}
}

// relay proxies c's requests one at a time over its own upstream
// connection.
func (f *floor) relay(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", f.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	xff := xffLine(c.RemoteAddr())
	in := make([]byte, 0, 8192)
	resp := make([]byte, 0, 8192)
	var out []byte
	for {
		n, err := messageEnd(in)
		if err != nil {
			return
		}
		if n == 0 {
			if in, err = readMore(c, in); err != nil {
				return
			}
			continue
		}
		out = appendForwarded(out[:0], in[:n], xff)
		in = in[:copy(in, in[n:])]
		if _, err := up.Write(out); err != nil {
			return
		}
		resp = resp[:0]
		for {
			m, err := messageEnd(resp)
			if err != nil {
				return
			}
			if m > 0 {
				break
			}
			if resp, err = readMore(up, resp); err != nil {
				return
			}
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// readMore reads once from c onto the end of b, growing it when full.
func readMore(c net.Conn, b []byte) ([]byte, error) {
	if len(b) == cap(b) {
		b = append(b, 0)[:len(b)]
	}
	n, err := c.Read(b[len(b):cap(b)])
	return b[:len(b)+n], err
}

// loopConn is one socket of floor-loop: a client, or an upstream
// connection in the pool.
type loopConn struct {
	fd     int
	client bool
	buf    []byte    // bytes read and not yet relayed
	peer   *loopConn // the client's upstream while a request is out, and back
	xff    []byte    // a client's X-Forwarded-For line
}

// loop is floor-loop's state: one goroutine owns all of it.
type loop struct {
	*floor
	ep    int
	conns []*loopConn // by fd
	idle  []*loopConn // upstream connections, last used first
	out   []byte
	addr  syscall.SockaddrInet4
}

// serveLoop is floor-loop: ln's socket and every connection on one epoll
// set, edge-triggered, served by this goroutine alone.
func (f *floor) serveLoop(ln net.Listener) error {
	lf, err := ln.(*net.TCPListener).File() // a blocking dup of the socket
	if err != nil {
		return err
	}
	lfd := int(lf.Fd())
	if err := syscall.SetNonblock(lfd, true); err != nil {
		return err
	}
	up, err := net.ResolveTCPAddr("tcp4", f.upstream)
	if err != nil {
		return err
	}
	l := &loop{floor: f}
	copy(l.addr.Addr[:], up.IP.To4())
	l.addr.Port = up.Port
	if l.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return err
	}
	defer func() {
		for _, c := range l.conns {
			if c != nil {
				l.close(c)
			}
		}
		syscall.Close(l.ep)
		lf.Close()
	}()
	if err := l.watch(lfd); err != nil {
		return err
	}
	events := make([]syscall.EpollEvent, 256)
	for !f.stopped.Load() {
		n, err := syscall.EpollWait(l.ep, events, int(floorTick/time.Millisecond))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range events[:n] {
			if fd := int(ev.Fd); fd == lfd {
				l.accept(lfd)
			} else if c := l.conn(fd); c != nil {
				l.readable(c)
			}
		}
	}
	return nil
}

// watch adds fd to the epoll set for input, edge-triggered.
func (l *loop) watch(fd int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | uint32(1)<<31, Fd: int32(fd)}
	return syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &ev)
}

func (l *loop) conn(fd int) *loopConn {
	if fd < len(l.conns) {
		return l.conns[fd]
	}
	return nil
}

func (l *loop) add(c *loopConn) error {
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, nil)
	}
	l.conns[c.fd] = c
	if err := l.watch(c.fd); err != nil {
		l.close(c)
		return err
	}
	return nil
}

// close closes c, and its peer too when a request is out between them.
func (l *loop) close(c *loopConn) {
	if c.fd < 0 {
		return
	}
	syscall.Close(c.fd)
	l.conns[c.fd], c.fd = nil, -1
	if p := c.peer; p != nil {
		c.peer, p.peer = nil, nil
		l.close(p)
	}
}

// accept takes every pending connection.
func (l *loop) accept(lfd int) {
	for {
		fd, sa, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: all taken
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1) //nolint:errcheck // a bench proxy
		var peer net.Addr = &net.TCPAddr{}
		if a, ok := sa.(*syscall.SockaddrInet4); ok {
			peer = &net.TCPAddr{IP: a.Addr[:], Port: a.Port}
		}
		l.add(&loopConn{fd: fd, client: true, buf: make([]byte, 0, 4096), xff: xffLine(peer)}) //nolint:errcheck // closed on error
	}
}

// dial opens a new upstream connection (a blocking connect: the pool fills
// during warm-up).
func (l *loop) dial() (*loopConn, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := syscall.Connect(fd, &l.addr); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1) //nolint:errcheck // a bench proxy
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	c := &loopConn{fd: fd, buf: make([]byte, 0, 4096)}
	return c, l.add(c)
}

// readable drains c (edge-triggered: until a read comes back short) and
// relays what is complete.
func (l *loop) readable(c *loopConn) {
	for {
		if len(c.buf) == cap(c.buf) {
			c.buf = append(c.buf, 0)[:len(c.buf)]
		}
		n, errno := rawRecv(c.fd, c.buf[len(c.buf):cap(c.buf)])
		if errno == syscall.EAGAIN {
			break
		}
		if errno != 0 || n == 0 {
			l.close(c)
			return
		}
		c.buf = c.buf[:len(c.buf)+n]
		if len(c.buf) < cap(c.buf) {
			break
		}
	}
	if c.client {
		l.forward(c)
	} else {
		l.respond(c)
	}
}

// forward sends c's next complete request upstream, unless one is out.
func (l *loop) forward(c *loopConn) {
	if c.peer != nil {
		return
	}
	n, err := messageEnd(c.buf)
	if err != nil {
		l.close(c)
		return
	}
	if n == 0 {
		return
	}
	up := l.pooled()
	if up == nil {
		if up, err = l.dial(); err != nil {
			l.close(c)
			return
		}
	}
	l.out = appendForwarded(l.out[:0], c.buf[:n], c.xff)
	c.buf = c.buf[:copy(c.buf, c.buf[n:])]
	c.peer, up.peer = up, c
	if writeAllFD(up.fd, l.out) != nil {
		l.close(up)
	}
}

// pooled returns the last idle upstream connection still open, or nil.
func (l *loop) pooled() *loopConn {
	for k := len(l.idle); k > 0; k-- {
		up := l.idle[k-1]
		l.idle = l.idle[:k-1]
		if up.fd >= 0 {
			return up
		}
	}
	return nil
}

// respond relays up's response to its client once complete, returns up to
// the pool, and forwards the client's next request if it is there.
func (l *loop) respond(up *loopConn) {
	n, err := messageEnd(up.buf)
	if err != nil || n > 0 && up.peer == nil {
		l.close(up)
		return
	}
	if n == 0 {
		return
	}
	c := up.peer
	c.peer, up.peer = nil, nil
	werr := writeAllFD(c.fd, up.buf[:n])
	up.buf = up.buf[:copy(up.buf, up.buf[n:])]
	l.idle = append(l.idle, up)
	if werr != nil {
		l.close(c)
		return
	}
	l.forward(c)
}

func rawRecv(fd int, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), errno
}

// writeAllFD writes p to the non-blocking socket fd, waiting in poll(2)
// when its buffer is full (rare here: bench messages are at most 16 KiB).
func writeAllFD(fd int, p []byte) error {
	for len(p) > 0 {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
		switch errno {
		case 0:
			p = p[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			pfd := struct {
				fd             int32
				events, revent int16
			}{fd: int32(fd), events: 0x4} // POLLOUT
			if _, _, errno := syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd)), 1, 1000); errno != 0 && errno != syscall.EINTR {
				return errno
			}
		default:
			return errno
		}
	}
	return nil
}

// startFloor starts the floor proxy name (floor-loop or floor-goroutine):
// this bench binary again, with floorEnv set.
func (e *env) startFloor(name string) (*target, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	mode := "loop"
	if name == targetFloorGoroutine {
		mode = "goroutine"
	}
	spec := fmt.Sprintf("%s=%s 127.0.0.1:0 %s", floorEnv, mode, e.upstream)
	p, addr, err := e.startProc(name, []string{exe}, []string{spec, "GOMAXPROCS=" + strconv.Itoa(e.gomaxprocs)}, "floor listening")
	if err != nil {
		return nil, err
	}
	t := &target{name: name, url: "http://" + addr, procs: []*loadtest.Proc{p}, owned: true}
	if err := waitReady(t); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}
