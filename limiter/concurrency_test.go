package limiter

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestConcurrencyOptions(t *testing.T) {
	f := func(max, queue int, wait time.Duration, want string) {
		t.Helper()
		_, err := NewConcurrency(max, queue, wait)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Fatalf("NewConcurrency(%d, %d, %s): got %q; want %q", max, queue, wait, got, want)
		}
	}
	f(1, 0, 0, "")
	f(0, 0, 0, "limiter: max_concurrency must be > 0; got 0")
	f(1, -1, 0, "limiter: queue must be >= 0 (0 means no queue); got -1")
	f(1, 1, -time.Second, "limiter: queue wait must be >= 0 (0 means no queue); got -1s")
}

// TestConcurrencyMaxRespected: 16 callers hold their first slot until the
// test has seen max of them in flight and the rest queued, then all run 50
// rounds each; no more than max are ever in flight, and no caller is
// refused (the queue holds them all, the wait is longer than the test).
func TestConcurrencyMaxRespected(t *testing.T) {
	const max, callers, rounds = 3, 16, 50
	c, _ := NewConcurrency(max, callers, time.Hour)
	var inflight, peak, done atomic.Int64
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				if !c.Acquire() {
					t.Errorf("Acquire: got false; want true (queue of %d, wait 1h)", callers)
					return
				}
				n := inflight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if i == 0 {
					<-gate // hold the first slot until the test has looked
				}
				inflight.Add(-1)
				done.Add(1)
				c.Release()
			}
		}()
	}
	waitUntil(t, "max in flight and the others queued", func() bool {
		return c.InFlight() == max && c.Waiting() == callers-max
	})
	if got := inflight.Load(); got != max {
		t.Fatalf("callers holding a slot: got %d; want %d", got, max)
	}
	close(gate)
	wg.Wait()
	if got := peak.Load(); got != max {
		t.Fatalf("peak in flight: got %d; want %d", got, max)
	}
	if got := done.Load(); got != callers*rounds {
		t.Fatalf("completed: got %d; want %d", got, callers*rounds)
	}
	if got := c.InFlight(); got != 0 {
		t.Fatalf("InFlight at the end: got %d; want 0", got)
	}
}

// waitUntil polls cond until it holds; the bound only stops a broken test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrencyNoQueue(t *testing.T) {
	c, _ := NewConcurrency(2, 0, time.Second)
	f := func(want bool) {
		t.Helper()
		if got := c.Acquire(); got != want {
			t.Fatalf("Acquire with %d in flight: got %v; want %v", c.InFlight(), got, want)
		}
	}
	f(true)
	f(true)
	f(false) // full, no queue: rejected at once
	c.Release()
	f(true)
}

// TestConcurrencyQueueBound: with the slot taken and the queue full, a
// caller is refused without waiting; a released slot goes to a queued
// caller, which no caller could get by timing out first (the wait is an
// hour).
func TestConcurrencyQueueBound(t *testing.T) {
	c, _ := NewConcurrency(1, 2, time.Hour)
	if !c.Acquire() {
		t.Fatal("first Acquire: got false; want true")
	}
	// two waiters fill the queue
	results := make(chan bool, 3)
	for range 2 {
		go func() { results <- c.Acquire() }()
	}
	waitUntil(t, "two callers queued", func() bool { return c.Waiting() == 2 })
	// A third is refused: the queue is bounded. Had it queued, it would
	// wait an hour: the select's bound reports that instead.
	go func() { results <- c.Acquire() }()
	select {
	case ok := <-results:
		if ok {
			t.Fatal("Acquire with a full queue: got true; want false")
		}
	case <-time.After(time.Minute):
		t.Fatal("Acquire with a full queue: still waiting after a minute; want refused at once")
	}
	// each release hands the slot to one waiter, in turn
	for want := 1; want >= 0; want-- {
		c.Release()
		if !<-results {
			t.Fatal("queued Acquire after a Release: got false; want true")
		}
		if got := c.Waiting(); got != want {
			t.Fatalf("Waiting after a hand-over: got %d; want %d", got, want)
		}
	}
	c.Release()
	if got := c.InFlight(); got != 0 {
		t.Fatalf("InFlight at the end: got %d; want 0", got)
	}
}

// TestConcurrencyQueueTimeout: a queued caller gives up after the wait,
// never before it.
func TestConcurrencyQueueTimeout(t *testing.T) {
	const wait = 20 * time.Millisecond
	c, _ := NewConcurrency(1, 1, wait)
	if !c.Acquire() {
		t.Fatal("first Acquire: got false; want true")
	}
	start := time.Now()
	if c.Acquire() {
		t.Fatal("queued Acquire with the slot never released: got true; want false")
	}
	if el := time.Since(start); el < wait {
		t.Fatalf("queued Acquire gave up after %s; want at least the %s wait", el, wait)
	}
	if got := c.Waiting(); got != 0 {
		t.Fatalf("Waiting after the timeout: got %d; want 0", got)
	}
	c.Release()
}

func TestKeyedConcurrency(t *testing.T) {
	c, _ := NewKeyedConcurrency(2)
	a, b := []byte("a"), []byte("b")
	f := func(key []byte, want bool) {
		t.Helper()
		if got := c.Acquire(key); got != want {
			t.Fatalf("Acquire(%s): got %v; want %v", key, got, want)
		}
	}
	f(a, true)
	f(a, true)
	f(a, false)
	f(b, true) // another key has its own slots
	c.Release(a)
	f(a, true)
	c.Release(a)
	c.Release(a)
	c.Release(b)
	if got := c.InFlight(a); got != 0 {
		t.Fatalf("InFlight(a): got %d; want 0", got)
	}
	n := 0
	for i := range c.shards {
		n += len(c.shards[i].m)
	}
	if n != 0 {
		t.Fatalf("keys held with nothing in flight: got %d; want 0", n)
	}
}
