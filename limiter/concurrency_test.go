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

func TestConcurrencyMaxRespected(t *testing.T) {
	const max = 3
	c, _ := NewConcurrency(max, 100, 50*time.Millisecond)
	var inflight, peak, done atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if !c.Acquire() {
					continue
				}
				n := inflight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(10 * time.Microsecond)
				inflight.Add(-1)
				done.Add(1)
				c.Release()
			}
		}()
	}
	wg.Wait()
	if got := peak.Load(); got > max {
		t.Fatalf("peak in flight: got %d; want <= %d", got, max)
	}
	if done.Load() == 0 {
		t.Fatalf("completed: got 0; want > 0")
	}
	if got := c.InFlight(); got != 0 {
		t.Fatalf("InFlight at the end: got %d; want 0", got)
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

func TestConcurrencyQueueBoundAndTimeout(t *testing.T) {
	const wait = 200 * time.Millisecond
	c, _ := NewConcurrency(1, 2, wait)
	if !c.Acquire() {
		t.Fatal("first Acquire: got false; want true")
	}
	// two waiters fill the queue
	results := make(chan bool, 2)
	for range 2 {
		go func() { results <- c.Acquire() }()
	}
	deadline := time.Now().Add(time.Second)
	for c.Waiting() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := c.Waiting(); got != 2 {
		t.Fatalf("Waiting: got %d; want 2", got)
	}
	// a third is rejected at once: the queue is bounded
	start := time.Now()
	if c.Acquire() {
		t.Fatal("Acquire with a full queue: got true; want false")
	}
	if el := time.Since(start); el > wait/2 {
		t.Fatalf("rejection with a full queue took %s; want immediate", el)
	}
	// releasing the slot hands it to one waiter; the other times out
	c.Release()
	got := []bool{<-results, <-results}
	if got[0] == got[1] {
		t.Fatalf("waiters: got %v; want one true (handed the slot) and one false (timed out)", got)
	}
	if el := time.Since(start); el < wait/2 {
		t.Fatalf("timed-out waiter returned after %s; want about %s", el, wait)
	}
	c.Release()
	if got := c.InFlight(); got != 0 {
		t.Fatalf("InFlight at the end: got %d; want 0", got)
	}
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
