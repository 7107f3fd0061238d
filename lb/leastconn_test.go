package lb

import (
	"testing"
	"time"
)

func TestLeastConnPrefersLessLoaded(t *testing.T) {
	f := func(weights []int, inflight []int, want map[int]bool) {
		t.Helper()
		s := testSet(t, SetOptions{}, weights...)
		for i, n := range inflight {
			for range n {
				s.targets[i].Begin()
			}
		}
		lc := NewLeastConn(s)
		got := map[int]int{}
		for k := 0; k < 1000; k++ {
			got[lc.Pick(0, 0)]++
		}
		for i, c := range got {
			if !want[i] {
				t.Fatalf("weights %v, in-flight %v: got %d picks of %d; want only %v", weights, inflight, c, i, want)
			}
		}
		for i := range want {
			if got[i] < 1000/len(want)/2 {
				t.Fatalf("weights %v, in-flight %v: got %d picks of %d; want a fair share of the tie %v", weights, inflight, got[i], i, want)
			}
		}
	}
	f([]int{1, 1, 1, 1}, []int{5, 0, 3, 0}, map[int]bool{1: true, 3: true})
	f([]int{1, 1, 1}, []int{0, 0, 0}, map[int]bool{0: true, 1: true, 2: true}) // no favouring index 0
	f([]int{1, 4}, []int{1, 4}, map[int]bool{1: true})                         // 5/4 < 2/1
	f([]int{1, 3}, []int{0, 0}, map[int]bool{1: true})                         // idle: the heavier
}

func TestP2CPrefersLessLoaded(t *testing.T) {
	const n = 10
	s := testSet(t, SetOptions{}, ones(n)...)
	for i, tg := range s.targets {
		for range 10 * (n - i) { // target 0 the busiest, target 9 the idlest
			tg.Begin()
		}
	}
	p := NewP2C(s)
	counts := make([]int, n)
	for k := 0; k < 10000; k++ {
		counts[p.Pick(0, 0)]++
	}
	if counts[0] != 0 {
		t.Fatalf("busiest target: got %d picks; want 0 (it loses every comparison)", counts[0])
	}
	for i := 1; i < n; i++ {
		if counts[i] < counts[i-1] {
			t.Fatalf("picks by load, busiest first: got %v; want non-decreasing", counts)
		}
	}
}

// TestP2CEWMAAvoidsSlowTarget simulates 3 targets on virtual time, one of
// them 10× slower, with each request holding its target for its latency.
func TestP2CEWMAAvoidsSlowTarget(t *testing.T) {
	f := func(policy string, maxSlowShare float64) {
		t.Helper()
		s := testSet(t, SetOptions{}, 1, 1, 1)
		b, _ := New(policy, s, Options{})
		latency := []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 50 * time.Millisecond}
		type req struct {
			target int
			start  int64
		}
		var live []req
		counts := make([]int, 3)
		for step := int64(1); step <= 20000; step++ { // 20s in 1ms steps
			now := step * int64(time.Millisecond)
			kept := live[:0]
			for _, r := range live {
				if now-r.start >= int64(latency[r.target]) {
					s.targets[r.target].Observe(now, time.Duration(now-r.start))
					s.targets[r.target].End()
					continue
				}
				kept = append(kept, r)
			}
			live = kept
			if step%100 == 0 {
				s.Tick(now)
			}
			for range 2 { // 2000 requests/s
				i := b.Pick(0, 0)
				s.targets[i].Begin()
				live = append(live, req{i, now})
				counts[i]++
			}
		}
		share := float64(counts[2]) / float64(counts[0]+counts[1]+counts[2])
		t.Logf("%s: picks %v, slow target's share %.3f", policy, counts, share)
		if share > maxSlowShare {
			t.Fatalf("%s: got slow target share %.3f; want ≤ %.3f", policy, share, maxSlowShare)
		}
	}
	f(PolicyP2CEWMA, 0.05)
	f(PolicyP2C, 1) // reference: in-flight alone, logged
}

func TestObservePeakEWMA(t *testing.T) {
	s := testSet(t, SetOptions{EWMADecay: 10 * time.Second}, 1)
	tg := s.targets[0]
	sec := int64(time.Second)
	f := func(now int64, rtt, want time.Duration) {
		t.Helper()
		tg.Observe(now, rtt)
		if got := tg.EWMA(); got < want-want/100 || got > want+want/100 {
			t.Fatalf("at %ds after %v: got EWMA %v; want %v±1%%", now/sec, rtt, got, want)
		}
	}
	f(1*sec, 10*time.Millisecond, 10*time.Millisecond)   // first sample
	f(2*sec, 100*time.Millisecond, 100*time.Millisecond) // peak: replaces
	// 10s later, a 10ms sample: weight exp(-1) on the old value.
	f(12*sec, 10*time.Millisecond, 43108*time.Microsecond)
	// Tick decays an idle EWMA the same way: 10s more, toward 0.
	s.Tick(22 * sec)
	if got, want := tg.EWMA(), 15859*time.Microsecond; got < want-want/100 || got > want+want/100 {
		t.Fatalf("idle decay: got EWMA %v; want %v±1%%", got, want)
	}
}
