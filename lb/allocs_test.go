//go:build !race

package lb

import (
	"testing"
	"time"
)

func TestPickAllocs(t *testing.T) {
	for _, p := range policies {
		for _, bounded := range []float64{0, 1.25} {
			s := testSet(t, SetOptions{}, 3, 1, 1, 2)
			b, err := New(p, s, Options{BoundedLoad: bounded})
			if err != nil {
				t.Fatalf("%s: %s", p, err)
			}
			s.targets[1].ReportCheck(false) // slow paths too
			key := uint64(0)
			if n := testing.AllocsPerRun(1000, func() { key += 0x9e3779b97f4a7c15; b.Pick(key, 1) }); n != 0 {
				t.Fatalf("%s (bounded %v).Pick: got %v allocs; want 0", p, bounded, n)
			}
		}
	}
}

// TestLeastConnSampledAllocs covers the sampled picks of sets larger than
// leastConnScanMax, equal and unequal weights, and the fallback scan.
func TestLeastConnSampledAllocs(t *testing.T) {
	for _, weights := range [][]int{ones(20), append(ones(19), 3)} {
		lc := NewLeastConn(testSet(t, SetOptions{}, weights...))
		for _, skip := range []uint64{1, 1<<20 - 2} {
			if n := testing.AllocsPerRun(1000, func() { lc.Pick(0, skip) }); n != 0 {
				t.Fatalf("weights %v, skip %b: LeastConn.Pick: got %v allocs; want 0", weights, skip, n)
			}
		}
	}
}

func TestTargetHotPathAllocs(t *testing.T) {
	s := testSet(t, SetOptions{ConsecutiveFailures: 1 << 30}, 1, 1)
	tg := s.targets[0]
	now := int64(0)
	f := func(name string, fn func()) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Fatalf("%s: got %v allocs; want 0", name, n)
		}
	}
	f("Begin/End", func() { tg.Begin(); tg.End() })
	f("ReportResult", func() { now++; tg.ReportResult(now, now%2 == 0) })
	f("Observe", func() { now++; tg.Observe(now, time.Millisecond) })
	f("Tick", func() { now += int64(time.Second); s.Tick(now) })
	br, bu := NewBreaker(10, 10), NewBudget(0.2, 3)
	f("Breaker", func() { br.TryBegin(); br.End(); br.TryPending(); br.EndPending() })
	f("Budget", func() { bu.TryRetry(1); bu.EndRetry() })
	f("Backoff", func() { Backoff(3, time.Millisecond, time.Second) })
}
