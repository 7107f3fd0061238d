package core

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are recvfrom(2) and sendto(2) without an address
// (what nginx calls for a socket: read and write would take the VFS path
// first, 2–3% of fastgate's CPU in perf) on a socket the poller owns,
// which is non-blocking: they return at once, with EAGAIN when the
// socket is not ready. So they skip the runtime's syscall bookkeeping
// (syscall.Read and syscall.Write enter and leave the scheduler's syscall
// state around the call). That bookkeeping is more than its own cost on
// the request path: a P in a syscall that sysmon sees across two of its
// ticks is handed off to another thread, and each hand-off keeps sysmon
// polling every 20µs instead of backing off to 10ms.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), errno
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	return sysSend(fd, p, 0)
}

// sysSend is sysWrite with send flags: with MSG_MORE the kernel may keep
// the last, partial segment back for what follows, as TCP_CORK does;
// close(2) sends it with the FIN.
func sysSend(fd uintptr, p []byte, flags int) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(flags), 0, 0)
	return int(n), errno
}

// readFD reads fd into p with sysRead: ok is false when there was nothing
// to read (EAGAIN); a read of 0 bytes is io.EOF.
func readFD(fd uintptr, p []byte) (n int, err error, ok bool) {
	for {
		n, errno := sysRead(fd, p)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return 0, nil, false
		case errno != 0:
			return 0, os.NewSyscallError("read", errno), true
		case n == 0 && len(p) > 0:
			return 0, io.EOF, true
		}
		return n, nil, true
	}
}

// rawTCP returns c as a TCP connection with its RawConn (SyscallConn
// allocates, so once per connection), or ok false for anything else.
func rawTCP(c net.Conn) (tc *net.TCPConn, raw syscall.RawConn, ok bool) {
	tc, ok = c.(*net.TCPConn)
	if !ok {
		return nil, nil, false
	}
	raw, err := tc.SyscallConn()
	return tc, raw, err == nil
}
