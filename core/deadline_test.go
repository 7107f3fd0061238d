package core

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// lazyPair returns a lazyConn and its peer over loopback TCP.
func lazyPair(t *testing.T) (*lazyConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := lazyListener{ln}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c.(*lazyConn), peer
}

// readAfter has the peer send one byte after d, and reads on c.
func readAfter(c *lazyConn, peer net.Conn, d time.Duration) error {
	go func() {
		time.Sleep(d)
		peer.Write([]byte("x")) //nolint:errcheck
	}()
	_, err := c.Read(make([]byte, 1))
	return err
}

func TestLazyDeadlines(t *testing.T) {
	f := func(name string, set func(c *lazyConn), dataAfter time.Duration, wantTimeout bool) {
		t.Helper()
		c, peer := lazyPair(t)
		set(c)
		err := readAfter(c, peer, dataAfter)
		timedOut := errors.Is(err, os.ErrDeadlineExceeded)
		if timedOut != wantTimeout || (err != nil && !timedOut) {
			t.Fatalf("%s: read error %v; want timeout %v", name, err, wantTimeout)
		}
	}
	now := time.Now
	f("asked deadline fires", func(c *lazyConn) {
		c.SetReadDeadline(now().Add(50 * time.Millisecond)) //nolint:errcheck
	}, time.Second, true)
	f("a later deadline extends the armed one", func(c *lazyConn) {
		c.SetReadDeadline(now().Add(50 * time.Millisecond)) //nolint:errcheck
		c.SetReadDeadline(now().Add(2 * time.Second))       //nolint:errcheck
	}, 300*time.Millisecond, false)
	f("a later deadline still fires", func(c *lazyConn) {
		c.SetReadDeadline(now().Add(50 * time.Millisecond))  //nolint:errcheck
		c.SetReadDeadline(now().Add(200 * time.Millisecond)) //nolint:errcheck
	}, 2*time.Second, true)
	f("zero removes the deadline", func(c *lazyConn) {
		c.SetReadDeadline(now().Add(50 * time.Millisecond)) //nolint:errcheck
		c.SetReadDeadline(time.Time{})                      //nolint:errcheck
	}, 300*time.Millisecond, false)
	f("an earlier deadline is armed at once", func(c *lazyConn) {
		c.SetReadDeadline(now().Add(5 * time.Second))       //nolint:errcheck
		c.SetReadDeadline(now().Add(50 * time.Millisecond)) //nolint:errcheck
	}, 2*time.Second, true)
}

// TestLazyDeadlinesArmOnce checks the point of lazyConn: deadlines that
// only move later, as fasthttp's per-request ones do, are armed once.
func TestLazyDeadlinesArmOnce(t *testing.T) {
	c, _ := lazyPair(t)
	base := time.Now().Add(time.Minute)
	for i := 0; i < 100; i++ {
		c.SetReadDeadline(base.Add(time.Duration(i) * time.Millisecond))  //nolint:errcheck
		c.SetWriteDeadline(base.Add(time.Duration(i) * time.Millisecond)) //nolint:errcheck
	}
	if got, want := c.rd.armed.Load(), base.UnixNano(); got != want {
		t.Fatalf("read deadline armed at %d; want the first, %d", got, want)
	}
	if got, want := c.rd.want.Load(), base.Add(99*time.Millisecond).UnixNano(); got != want {
		t.Fatalf("read deadline wanted %d; want the last asked, %d", got, want)
	}
}

func TestLazyWrite(t *testing.T) {
	c, peer := lazyPair(t)
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)) //nolint:errcheck
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))       //nolint:errcheck
	time.Sleep(100 * time.Millisecond)                        // the armed deadline has passed
	if n, err := c.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("write after the armed deadline passed, a later one wanted: %d, %v", n, err)
	}
	buf := make([]byte, 5)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	if _, err := peer.Read(buf); err != nil || string(buf) != "hello" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
}
