package main

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// blackhole returns a loopback address whose listener never accepts and
// whose accept queue is full, so the kernel drops further SYNs: a connect
// there hangs until the dialer's timeout, as with a firewalled host.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the accept queue; the connections stay open, never accepted.
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp4", addr, 200e6)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// TestUnsentRequestsAreRetried (issue "A request that never reached an
// upstream must not fail while another target is healthy"): of three
// targets one refuses connections and one drops SYNs; 16 clients send
// 2,000 mixed GETs and POSTs, and every one is a 200, because a request
// that got no connection is retried at once on an untried target,
// whatever its method, without spending an attempt or the retry budget.
func TestUnsentRequestsAreRetried(t *testing.T) {
	// Ejecting: passive health takes the bad targets out after a few
	// failures (panic mode off, so they stay out).
	t.Run("ejecting", func(t *testing.T) {
		testUnsent(t, "250ms", "{panic_threshold: -1, passive: {consecutive_failures: 5, max_ejection_percent: 70}}")
	})
	// In rotation: no ejection, so every request may meet a bad target
	// first, or both.
	t.Run("in rotation", func(t *testing.T) {
		testUnsent(t, "50ms", "{passive: {consecutive_failures: 0}}")
	})
}

func testUnsent(t *testing.T, connect, health string) {
	ok := startUpstream(t, "ok")
	refusing := freePort(t)
	hole := blackhole(t)
	g := startGateway(t, `
upstreams:
  u:
    targets: [{url: "http://`+refusing+`"}, {url: "http://`+hole+`"}, {url: "{{ok}}"}]
    timeouts: {connect: `+connect+`}
    retries: {attempts: 2, budget: 0.2, on: [connect_error, reset, timeout, 502, 503]}
    health: `+health+`
routes: [{upstream: u}]
`, ok)
	start := time.Now()
	const clients, total = 16, 2000
	var next atomic.Int64
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				method := http.MethodGet
				if i%2 == 0 {
					method = http.MethodPost
				}
				r, err := g.try(method, "/x", "")
				if err == nil && r.status != http.StatusOK {
					err = fmt.Errorf("%s: status %d: %s", method, r.status, r.body)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests in %s", total, time.Since(start).Round(time.Millisecond))
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed; want 0; first: %s", len(failures), total, failures[0])
	}
	st := g.upstreamStatus(t, "u")
	t.Logf("refusing target: %+v", targetOf(st, refusing))
	t.Logf("blackholed target: %+v", targetOf(st, hole))
}
