package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Socket options of Linux that package syscall does not name.
const (
	soReusePort   = 0x0f // SO_REUSEPORT
	tcpFastOpen   = 0x17 // TCP_FASTOPEN
	fastOpenQueue = 16 << 10
)

// listen opens addr for the gateway's clients.
//
// TCP keep-alive probes are off on the connections it accepts, as nginx
// (so_keepalive) and Envoy have them by default: idle_timeout closes an idle
// client connection long before probes would find it dead. Go turns them
// on for every accepted connection unless told otherwise, at four
// setsockopt calls each, about a tenth of fastgate's CPU for a request on
// a new connection (Connection: close).
//
// TCP_DEFER_ACCEPT hands a connection over once its first bytes are there
// (nginx's "deferred", HAProxy's defer-accept): every protocol the gateway
// serves has the client speak first, so the first read finds the request
// instead of returning EAGAIN and waiting for the poller, which it did
// for about a third of new connections.
//
// reusePort adds SO_REUSEPORT, so that several processes share the port,
// and TCP_FASTOPEN, as fasthttp's reuseport package set them.
func listen(network, addr string, reusePort bool) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	lc.Control = func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = setListenOptions(int(fd), reusePort) })
		return errors.Join(err, serr)
	}
	return lc.Listen(context.Background(), network, addr)
}

func setListenOptions(fd int, reusePort bool) error {
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1); err != nil {
		return fmt.Errorf("cannot enable TCP_DEFER_ACCEPT: %w", err)
	}
	if !reusePort {
		return nil
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, soReusePort, 1); err != nil {
		return fmt.Errorf("cannot enable SO_REUSEPORT (-reuseport needs Linux 3.9 or later): %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, tcpFastOpen, fastOpenQueue); err != nil {
		return fmt.Errorf("cannot enable TCP_FASTOPEN: %w", err)
	}
	return nil
}
