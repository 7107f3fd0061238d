package core

import (
	"net"
	"syscall"
	"testing"
	"time"

	"fastgate/core/config"
)

// sockopt reads an int socket option of c.
func sockopt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

// TestListenNoKeepAlive: the gateway's listener defers accepting until a
// connection's first bytes, and its accepted connections have no TCP
// keep-alive probes (Go's default would turn them on), with or without
// SO_REUSEPORT, and Nagle stays off; with SO_REUSEPORT two listeners share
// one port.
func TestListenNoKeepAlive(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		ln, err := listen("tcp4", "127.0.0.1:0", reuse)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		fl, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		v, err := syscall.GetsockoptInt(int(fl.Fd()), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT)
		fl.Close()
		if err != nil || v == 0 {
			t.Errorf("reuseport %v: TCP_DEFER_ACCEPT %d, %v on the listener; want it on", reuse, v, err)
		}
		if reuse {
			ln2, err := listen("tcp4", ln.Addr().String(), true)
			if err != nil {
				t.Fatalf("a second SO_REUSEPORT listener on %s: %v", ln.Addr(), err)
			}
			ln2.Close()
		}
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("x")); err != nil { // TCP_DEFER_ACCEPT waits for data
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v := sockopt(t, s, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); v != 0 {
			t.Errorf("reuseport %v: SO_KEEPALIVE %d on an accepted connection; want 0", reuse, v)
		}
		if v := sockopt(t, s, syscall.IPPROTO_TCP, syscall.TCP_NODELAY); v == 0 {
			t.Errorf("reuseport %v: TCP_NODELAY off on an accepted connection; want on", reuse)
		}
	}
}

// TestUpstreamDialNoKeepAlive: the connections a target's pool dials have
// no TCP keep-alive probes either.
func TestUpstreamDialNoKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	u := &config.Upstream{Timeouts: config.Timeouts{Connect: config.Duration(time.Second)}}
	tg := newTarget(ln.Addr().String(), u, nil, nil)
	c, err := tg.hc.DialTimeout(ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v := sockopt(t, c.(*rawTCPConn).TCPConn, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); v != 0 {
		t.Errorf("SO_KEEPALIVE %d on a pooled upstream connection; want 0", v)
	}
}
