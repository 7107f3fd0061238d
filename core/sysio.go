package core

import (
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
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	return int(n), errno
}
