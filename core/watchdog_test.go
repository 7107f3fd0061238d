package core

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// loopbackPairs returns a function that connects a client to a loopback
// listener and returns both ends, closed when the test ends.
func loopbackPairs(t *testing.T) func() (client *net.TCPConn, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return func() (*net.TCPConn, net.Conn) {
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
}

// TestClientGone: the watchdog's poll sees a peer's close even behind
// unread data (a pipelined request, a TLS close_notify), and a reset, and
// never consumes data.
func TestClientGone(t *testing.T) {
	pair := loopbackPairs(t)
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

// TestWatchdogBackoff: a waiting request is polled when its age has
// doubled since the last poll, and at least every watchMaxGap, so its polls
// grow with the log of its age, not with every tick; a client that leaves
// is still seen within watchMaxGap. The ticks are driven with a made-up
// clock.
func TestWatchdogBackoff(t *testing.T) {
	c, s := loopbackPairs(t)()
	x := &exchange{ctx: &fasthttp.RequestCtx{}}
	x.ctx.Init2(s, nil, false)
	w := &watchdog{}
	start := time.Unix(1000, 0)
	w.watch(x, start)
	now := start
	tick := func() {
		now = now.Add(watchTick)
		for i := range w.shards {
			w.scan(&w.shards[i], now.UnixNano())
		}
	}
	// Polled at 40, 80, 160, 320, 640 and 1280 ms of age, then every second.
	want := 0
	for next := watchMinAge; next <= 10*time.Second; {
		want++
		next += min(next, watchMaxGap)
	}
	for now.Sub(start) < 10*time.Second {
		tick()
	}
	if got := w.polls.Load(); got != uint64(want) {
		t.Fatalf("polls in 10s of waiting: %d; want %d (every tick would be %d)", got, want, 10*time.Second/watchTick)
	}
	if x.cancel.canceled.Load() {
		t.Fatal("a request whose client is there was canceled")
	}

	c.Close()
	// Loopback delivers the close at once; the bound only keeps a broken
	// build from hanging.
	for i := 0; i < 100000 && !clientGone(s); i++ {
	}
	for i := time.Duration(0); i < watchMaxGap/watchTick && !x.cancel.canceled.Load(); i++ {
		tick()
	}
	if !x.cancel.canceled.Load() || w.canceled.Load() != 1 {
		t.Fatalf("a client that left was not seen within %s (canceled %d)", watchMaxGap, w.canceled.Load())
	}
	unwatch(x)
}

// TestWatchdogSleepsWhenIdle: with no request registered the watchdog's
// timer is stopped, so an idle gateway is not woken 50 times a second; a
// registration wakes it (a client that left is still seen), and once the
// last request is gone it sleeps again.
func TestWatchdogSleepsWhenIdle(t *testing.T) {
	c, s := loopbackPairs(t)()
	x := &exchange{ctx: &fasthttp.RequestCtx{}}
	x.ctx.Init2(s, nil, false)
	w := newWatchdog()
	slept := make(chan struct{}, 1)
	w.slept = func() { slept <- struct{}{} }
	go w.run()
	defer w.stop()
	waitSlept := func(what string) {
		t.Helper()
		select {
		case <-slept:
		case <-time.After(10 * time.Second): // a hang guard, not a timing
			t.Fatalf("the watchdog did not go to sleep %s", what)
		}
		if !w.asleep.Load() {
			t.Fatalf("slept %s but not asleep", what)
		}
	}

	w.watch(x, time.Now())
	if w.asleep.Load() {
		t.Fatal("asleep with a request registered")
	}
	unwatch(x)
	waitSlept("after its request ended")

	// Asleep, it must still see a client that leaves.
	c.Close()
	for i := 0; i < 100000 && !clientGone(s); i++ {
	}
	x.cancel.reset()
	w.watch(x, time.Now())
	for end := time.Now().Add(10 * time.Second); !x.cancel.canceled.Load(); {
		if time.Now().After(end) { // a hang guard, not a timing
			t.Fatal("a client that left while the watchdog slept was not seen")
		}
		time.Sleep(time.Millisecond)
	}
	if w.polls.Load() == 0 || w.canceled.Load() != 1 {
		t.Fatalf("polls %d, canceled %d; want some and 1", w.polls.Load(), w.canceled.Load())
	}
	unwatch(x)
	waitSlept("after the canceled request ended")
}
