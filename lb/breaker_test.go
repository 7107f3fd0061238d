package lb

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestBreakerLimits(t *testing.T) {
	b := NewBreaker(2, 1)
	steps := []struct {
		call func() bool
		want bool
	}{
		{b.TryBegin, true}, {b.TryBegin, true}, {b.TryBegin, false},
		{b.TryPending, true}, {b.TryPending, false},
		{func() bool { b.End(); b.EndPending(); return true }, true},
		{b.TryBegin, true}, {b.TryPending, true}, {b.TryBegin, false},
	}
	for k, st := range steps {
		if got := st.call(); got != st.want {
			t.Fatalf("step %d: got %v; want %v", k, got, st.want)
		}
	}
	if b.RejectedRequests() != 2 || b.RejectedPending() != 1 || b.Active() != 2 || b.Pending() != 1 {
		t.Fatalf("got rejected %d/%d, active %d, pending %d; want 2/1, 2, 1", b.RejectedRequests(), b.RejectedPending(), b.Active(), b.Pending())
	}
	u := NewBreaker(0, 0)
	for k := 0; k < 1000; k++ {
		if !u.TryBegin() || !u.TryPending() {
			t.Fatalf("no limits: got a rejection; want none")
		}
	}
}

func TestBreakerConcurrent(t *testing.T) {
	const limit = 5
	b := NewBreaker(limit, 0)
	var cur, peak, admitted atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 5000; k++ {
				if !b.TryBegin() {
					continue
				}
				admitted.Add(1)
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				cur.Add(-1)
				b.End()
			}
		}()
	}
	wg.Wait()
	if peak.Load() > limit {
		t.Fatalf("got %d concurrent; want ≤ %d", peak.Load(), limit)
	}
	if got := uint64(admitted.Load()) + b.RejectedRequests(); got != 8*5000 || b.Active() != 0 {
		t.Fatalf("got admitted+rejected %d, active %d; want %d, 0", got, b.Active(), 8*5000)
	}
}
