package lb

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestBudgetSteps(t *testing.T) {
	b := NewBudget(0.2, 2)
	// 10 active: max(2, 0.2×10) = 2 retries.
	for k, want := range []bool{true, true, false} {
		if got := b.TryRetry(10); got != want {
			t.Fatalf("retry %d with 10 active: got %v; want %v", k, got, want)
		}
	}
	// 20 active: 4 retries.
	for k, want := range []bool{true, true, false} {
		if got := b.TryRetry(20); got != want {
			t.Fatalf("retry %d with 20 active: got %v; want %v", k+2, got, want)
		}
	}
	b.EndRetry()
	if !b.TryRetry(20) {
		t.Fatalf("after EndRetry: got refused; want allowed")
	}
	if b.Exhausted() != 2 || b.Retries() != 4 {
		t.Fatalf("got exhausted %d, retries %d; want 2, 4", b.Exhausted(), b.Retries())
	}
	u := NewBudget(0, 0)
	if !u.TryRetry(0) {
		t.Fatalf("ratio 0: got refused; want no budget")
	}
}

func TestBudgetConcurrent(t *testing.T) {
	b := NewBudget(0.5, 1)
	var active atomic.Int64 // the caller's count of requests in flight
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 2000; k++ {
				n := active.Add(1)
				if b.TryRetry(n) {
					if r := b.Retries(); r > 8 { // 8 requests at most: max(1, 4)... plus racing reads
						t.Errorf("got %d active retries; want ≤ 8", r)
					}
					b.EndRetry()
				}
				active.Add(-1)
			}
		}()
	}
	wg.Wait()
	if active.Load() != 0 || b.Retries() != 0 {
		t.Fatalf("got %d requests, %d retries; want 0, 0", active.Load(), b.Retries())
	}
}

func TestBackoff(t *testing.T) {
	f := func(attempt int, base, cap, wantMax time.Duration) {
		t.Helper()
		var top time.Duration
		for range 2000 {
			d := Backoff(attempt, base, cap)
			if d < 0 || d >= max(wantMax, 1) {
				t.Fatalf("Backoff(%d, %v, %v): got %v; want in [0, %v)", attempt, base, cap, d, wantMax)
			}
			top = max(top, d)
		}
		if wantMax > 0 && top < wantMax/2 {
			t.Fatalf("Backoff(%d, %v, %v): got max %v over 2000 draws; want near %v (full jitter)", attempt, base, cap, top, wantMax)
		}
	}
	ms := time.Millisecond
	f(0, 10*ms, time.Second, 10*ms)
	f(3, 10*ms, time.Second, 80*ms)
	f(10, 10*ms, time.Second, time.Second)
	f(100, 10*ms, time.Second, time.Second)
	f(100, 10*ms, 0, 1<<62) // no cap: the doubling stops short of overflow
	f(-1, 10*ms, time.Second, 0)
	f(2, 0, time.Second, 0)
}
