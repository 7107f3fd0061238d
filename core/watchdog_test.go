package core

import (
	"net"
	"testing"
)

// TestClientGone: the watchdog's poll sees a peer's close even behind
// unread data (a pipelined request, a TLS close_notify), and a reset, and
// never consumes data.
func TestClientGone(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func() (client *net.TCPConn, server net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c.(*net.TCPConn), s
	}
	// eventually polls until the peer's segment has arrived; loopback
	// delivers it at once, the bound only keeps a broken build from hanging.
	eventually := func(s net.Conn) bool {
		for range 100000 {
			if clientGone(s) {
				return true
			}
		}
		return false
	}

	c, s := pair()
	if clientGone(s) {
		t.Fatal("an open, idle client reported gone")
	}
	c.Write([]byte("GET /next HTTP/1.1\r\n\r\n")) //nolint:errcheck
	if clientGone(s) {
		t.Fatal("an open client with a pipelined request reported gone")
	}
	c.Close()
	if !eventually(s) {
		t.Fatal("a client that closed after sending data not reported gone")
	}
	buf := make([]byte, 64)
	if n, _ := s.Read(buf); string(buf[:n]) != "GET /next HTTP/1.1\r\n\r\n" {
		t.Fatalf("the poll consumed data: read %q", buf[:n])
	}

	c, s = pair()
	c.SetLinger(0) //nolint:errcheck // close sends a reset
	c.Close()
	if !eventually(s) {
		t.Fatal("a client that reset the connection not reported gone")
	}

	if clientGone(newPipeConn(t)) {
		t.Fatal("an in-memory connection reported gone")
	}
}

func newPipeConn(t *testing.T) net.Conn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a
}
