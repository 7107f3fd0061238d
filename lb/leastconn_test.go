package lb

import (
	"math"
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

// TestLeastConnSampledSpreadsLoad: above leastConnScanMax targets a pick is
// the least loaded of leastConnChoices uniform candidates, so a loaded
// target is picked only when every candidate is it, ties spread evenly, and
// with graded loads the picks fall off as the minimum of 4 uniform ranks.
func TestLeastConnSampledSpreadsLoad(t *testing.T) {
	const n, picks = 100, 100000
	// One loaded target among idle ones: picked with probability (1/100)^4.
	s := testSet(t, SetOptions{}, ones(n)...)
	for range 10 {
		s.targets[7].Begin()
	}
	lc := NewLeastConn(s)
	counts := make([]int, n)
	for range picks {
		counts[lc.Pick(0, 0)]++
	}
	if counts[7] > 5 {
		t.Fatalf("loaded target among 99 idle ones: got %d of %d picks; want about 0", counts[7], picks)
	}
	share := picks / (n - 1)
	for i, c := range counts {
		if i != 7 && (c < share/2 || c > 2*share) {
			t.Fatalf("idle target %d: got %d of %d picks; want about %d (ties spread at random)", i, c, picks, share)
		}
	}

	// Target i has i requests in flight. The pick is the least loaded of 4
	// uniform draws: P(pick in decile d) = ((10-d)/10)^4 - ((9-d)/10)^4,
	// from 34% for the least loaded tenth down to 0.01% for the most loaded.
	s = testSet(t, SetOptions{}, ones(n)...)
	for i, tg := range s.targets {
		for range i {
			tg.Begin()
		}
	}
	lc = NewLeastConn(s)
	var deciles [10]int
	for range picks {
		deciles[lc.Pick(0, 0)/10]++
	}
	for d, got := range deciles {
		p := math.Pow(float64(10-d)/10, leastConnChoices) - math.Pow(float64(9-d)/10, leastConnChoices)
		want := p * picks
		// 5 binomial standard deviations (sqrt(want) bounds one)
		if math.Abs(float64(got)-want) > 5*math.Sqrt(want)+1 {
			t.Fatalf("graded loads: decile %d (in-flight %d..%d) got %d of %d picks; want %.0f; all deciles %v",
				d, 10*d, 10*d+9, got, picks, want, deciles)
		}
	}
}

// TestLeastConnSampledWeighted: above leastConnScanMax with unequal
// weights, candidates are drawn about in proportion to weight, so a target ten
// times heavier than the others ends with about ten times their in-flight
// requests, as with the full scan. (Drawn uniformly, it would be among the 4
// candidates of only 1-(19/20)^4 = 19% of the picks, below its 10/29 = 34%
// share.)
func TestLeastConnSampledWeighted(t *testing.T) {
	weights := append([]int{10}, ones(19)...)
	s := testSet(t, SetOptions{}, weights...)
	lc := NewLeastConn(s)
	for range 29 * 1000 {
		s.targets[lc.Pick(0, 0)].Begin() // requests never end: loads accumulate
	}
	heavy := float64(s.targets[0].InFlight())
	light := float64(s.InFlight()-s.targets[0].InFlight()) / 19
	if r := heavy / light; r < 9 || r > 11 {
		t.Fatalf("weight 10 among 19 of weight 1: in-flight %v vs %.1f on average (ratio %.2f); want a ratio of about 10", heavy, light, r)
	}
	for i, tg := range s.targets[1:] {
		if got := float64(tg.InFlight()); got < light*0.8 || got > light*1.2 {
			t.Fatalf("light target %d: in-flight %v; want about %.0f like the others", i+1, got, light)
		}
	}
}

// TestLeastConnSampledNeverUnusable: the sampled pick honours skip,
// availability and panic mode; when no candidate is usable it falls back
// to the full scan.
func TestLeastConnSampledNeverUnusable(t *testing.T) {
	for _, weights := range [][]int{ones(20), {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4}} {
		f := func(down []int, skip uint64, threshold int, want map[int]bool) {
			t.Helper()
			s := testSet(t, SetOptions{PanicThreshold: threshold}, weights...)
			for _, i := range down {
				s.targets[i].ReportCheck(false)
			}
			lc := NewLeastConn(s)
			got := map[int]bool{}
			for range 3000 {
				i := lc.Pick(0, skip)
				if !want[i] {
					t.Fatalf("weights %v, down %v, skip %b: got %d; want one of %v", weights, down, skip, i, want)
				}
				got[i] = true
				if i >= 0 {
					s.targets[i].Begin()
				}
			}
			if len(got) != len(want) {
				t.Fatalf("weights %v, down %v, skip %b: got picks %v; want all of %v", weights, down, skip, got, want)
			}
		}
		all := func(except ...int) map[int]bool {
			m := map[int]bool{}
			for i := range 20 {
				m[i] = true
			}
			for _, i := range except {
				delete(m, i)
			}
			return m
		}
		f(nil, 0, 0, all())
		f([]int{1, 3, 5}, 0b110000000, 0, all(1, 3, 5, 7, 8))
		// one usable target: candidates almost never hit it, the scan does
		f(nil, (1<<20-1)&^(1<<19), 0, map[int]bool{19: true})
		f([]int{19}, 1<<19-1, 0, map[int]bool{-1: true})
		// panic mode: 5 of 20 available is below 50%; the down ones are picked too
		f([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, 0b11, 0, all(0, 1))
	}
}

func TestNewDrawTable(t *testing.T) {
	f := func(weights []int32, want []int) {
		t.Helper()
		counts := make([]int, len(weights))
		tab := newDrawTable(weights)
		for _, i := range tab {
			counts[i]++
		}
		if want == nil {
			if tab != nil {
				t.Fatalf("weights %v: got a table of %d; want nil (equal weights)", weights, len(tab))
			}
			return
		}
		for i := range want {
			if counts[i] != want[i] {
				t.Fatalf("weights %v: got entries per target %v; want %v", weights, counts, want)
			}
		}
	}
	f([]int32{2, 2, 2}, nil)
	f(nil, nil)
	// budget 16×2 = 32 over total weight 4: 1 + 32×w/4 each
	f([]int32{1, 3}, []int{9, 25})
	// budget 16×3 = 48 over 12: 1 + 4w each
	f([]int32{1, 10, 1}, []int{5, 41, 5})

	// the most targets: at most 65536 entries, all reachable by a 16-bit draw
	w := make([]int32, MaxTargets)
	for i := range w {
		w[i] = int32(1 + i%MaxWeight)
	}
	if n := len(newDrawTable(w)); n > 1<<16 {
		t.Fatalf("%d targets: got a table of %d entries; want at most 65536", MaxTargets, n)
	}
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
