package lb

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBoundedLoadZipf simulates 100 targets under a Zipf(1.1) key stream
// over 10,000 keys with bounded loads at c = 1.25. Each step ends the
// requests whose hold time ran out, then starts 2,000 requests, each
// holding its target for a uniform 1..20 steps (about 21,000 in flight,
// mean m ≈ 210 per target).
//
// Measurement instants are the picks after warm-up; at each, ratio =
// in-flight of the picked target ÷ m, where m = total in-flight ÷ 100 over
// all targets (idle ones included), the new request counted on both sides.
// Bounded loads (with the floor lb uses) guarantee ratio ≤ ⌊c·m⌋/m ≤ c:
// that is asserted at every pick, and the worst ratio is asserted ≤ 1.25.
// Targets not picked can drift above c·m between their picks as other
// requests end (in-flight requests don't move); the worst end-of-step
// max/mean over all targets is logged for that.
func TestBoundedLoadZipf(t *testing.T) {
	f := func(policy string, c float64) {
		t.Helper()
		const n, steps, warmup, perStep = 100, 300, 60, 2000
		s := testSet(t, SetOptions{}, ones(n)...)
		b, err := New(policy, s, Options{BoundedLoad: c})
		if err != nil {
			t.Fatalf("%s: %s", policy, err)
		}
		r := rand.New(rand.NewPCG(3, 4))
		zipf := rand.NewZipf(r, 1.1, 1, 9999)
		ends := make([][]int, steps+21) // ends[step]: targets whose request ends then
		worst, worstStep, minMean := 0.0, 0.0, 1e9
		for step := 0; step < steps; step++ {
			for _, i := range ends[step] {
				s.targets[i].End()
			}
			for range perStep {
				i := b.Pick(mix64(zipf.Uint64()+1), 0)
				s.targets[i].Begin()
				end := step + 1 + r.IntN(20)
				ends[end] = append(ends[end], i)
				if step < warmup {
					continue
				}
				m := float64(s.InFlight()) / n
				in := float64(s.targets[i].InFlight())
				if c > 0 && in > math.Max(1, math.Floor(c*m)) {
					t.Fatalf("%s: step %d: picked target has %v in flight; want ≤ ⌊%v × %.2f⌋", policy, step, in, c, m)
				}
				worst, minMean = max(worst, in/m), min(minMean, m)
			}
			if step < warmup {
				continue
			}
			var total, peak int64
			for _, tg := range s.targets {
				total += tg.InFlight()
				peak = max(peak, tg.InFlight())
			}
			if s.InFlight() != total {
				t.Fatalf("set in-flight %d; want the targets' sum %d", s.InFlight(), total)
			}
			worstStep = max(worstStep, float64(peak)/(float64(total)/n))
		}
		t.Logf("%s, bounded load %v: max picked/mean in-flight %.4f (min mean %.0f); max/mean at step ends %.4f", policy, c, worst, minMean, worstStep)
		if c > 0 && worst > c {
			t.Fatalf("%s, bounded load %v: got max/mean in-flight %.4f; want ≤ %v", policy, c, worst, c)
		}
	}
	f(PolicyMaglev, 1.25)
	f(PolicyRing, 1.25)
	f(PolicyMaglev, 0) // reference without bounds, logged
	f(PolicyRing, 0)
}
