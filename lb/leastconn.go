package lb

import "math/rand/v2"

// LeastConn is weighted least request: it picks the target with the fewest
// in-flight requests relative to its weight, (in-flight+1)/weight (Envoy's
// weighted least request with bias 1; the +1 makes an idle heavy target win
// over an idle light one). Unavailable targets (outside panic mode) and
// targets in skip are never picked. Safe for concurrent use; 0 allocations.
//
// How many targets a pick compares depends on the size of the set:
//
//   - up to leastConnScanMax (8) pickable targets: all of them, from a random
//     start, so the pick is exactly the least loaded and ties go to a random
//     one (as vmauth's getLeastLoadedBackendURL does with its offset);
//   - more: the least loaded of leastConnChoices (4) random candidates, as
//     Envoy's least_request does with choice_count (default 2, i.e. P2C)
//     above a small set. Candidates are drawn with replacement, uniformly
//     when all weights are equal and about in proportion to weight
//     otherwise (from a precomputed draw table), so a heavy target is drawn
//     often enough to reach its weighted share. Ties go to the first
//     candidate drawn, a random one. The pick is one of the least loaded
//     targets, not always the least loaded: with equal weights and
//     distinct loads, the most loaded quarter of the targets gets (1/4)^4
//     = 0.4% of the picks, the single most loaded target practically none
//     (Mitzenmacher's power of d choices). When no candidate is usable (all
//     skipped or unavailable) Pick falls back to the full scan.
//
// Sampling keeps a pick O(1): the full scan costs about 1.5 ns per target
// (each target's counters are on their own cache lines), ~150 ns at 100
// targets, versus ~16 ns (equal weights) to ~20 ns (unequal) for 4
// candidates at any size (BenchmarkLeastConn).
type LeastConn struct {
	set *Set
	// draw lists target indexes about in proportion to their weights, for
	// candidate draws; nil when all weights are equal.
	draw []uint16
}

// Set sizes and sample size of LeastConn (see its doc).
const (
	// leastConnScanMax is the largest number of pickable targets scanned in full.
	leastConnScanMax = 8
	// leastConnChoices is the number of random candidates compared in
	// larger sets (Envoy's choice_count).
	leastConnChoices = 4
)

// NewLeastConn returns a least-connections balancer over set.
func NewLeastConn(set *Set) *LeastConn {
	return &LeastConn{set: set, draw: newDrawTable(set.weights)}
}

// newDrawTable returns target indexes, each listed 1 + floor(weight ×
// budget / total weight) times, budget = min(16 × targets, 65536 − targets):
// a uniform draw from it picks a target about in proportion to its weight
// (light targets a little more, from the 1), with one 16-bit random number,
// since the table has at most 65536 entries (≤ 128 KiB). It is the
// "expand out all hosts by weight" that Envoy's least_request_lb.h
// suggests, with the memory bounded. It returns nil when all weights are
// equal.
func newDrawTable(weights []int32) []uint16 {
	n := len(weights)
	var sum int64
	equal := true
	for _, w := range weights {
		sum += int64(w)
		equal = equal && w == weights[0]
	}
	if equal {
		return nil
	}
	budget := int64(min(16*n, 1<<16-n))
	t := make([]uint16, 0, n+int(budget))
	for i, w := range weights {
		for range 1 + int64(w)*budget/sum {
			t = append(t, uint16(i))
		}
	}
	return t
}

// Pick implements Balancer; key is ignored.
func (lc *LeastConn) Pick(key, skip uint64) int {
	v := lc.set.view.Load()
	n := len(v.pick)
	if n == 0 {
		return -1
	}
	if n > leastConnScanMax {
		// fast path: the best of a few random candidates
		var i int
		if lc.draw == nil {
			i = lc.sampleEqual(v, skip)
		} else {
			i = lc.sampleWeighted(v, skip)
		}
		if i >= 0 {
			return i
		}
		// slow path: no candidate was usable; scan them all
	}
	return lc.set.scan(v, fastrange(rand.Uint32(), n), skip)
}

// sampleEqual returns the least loaded usable one of leastConnChoices
// candidates drawn uniformly from v.pick, or -1 if none was usable. Equal
// weights: in-flight alone decides. One 64-bit random number gives the four
// 16-bit draws (MaxTargets < 1<<16).
func (lc *LeastConn) sampleEqual(v *view, skip uint64) int {
	s := lc.set
	best, bestIn := -1, int64(0)
	r := rand.Uint64()
	for range leastConnChoices {
		i := int(v.pick[fastrange(uint32(r)<<16, len(v.pick))])
		r >>= 16
		if !s.usable(i, skip, v.panic) {
			continue
		}
		if in := s.targets[i].inflight.Load(); best < 0 || in < bestIn {
			best, bestIn = i, in
		}
	}
	return best
}

// sampleWeighted is sampleEqual for unequal weights: candidates are drawn
// from lc.draw over all targets and compared by (in-flight+1)/weight.
func (lc *LeastConn) sampleWeighted(v *view, skip uint64) int {
	s := lc.set
	best := -1
	var bestIn, bestW int64
	r := rand.Uint64()
	for range leastConnChoices {
		i := int(lc.draw[fastrange(uint32(r)<<16, len(lc.draw))])
		r >>= 16
		if !s.usable(i, skip, v.panic) {
			continue
		}
		in, w := s.targets[i].inflight.Load()+1, int64(s.weights[i])
		if best < 0 || in*bestW < bestIn*w {
			best, bestIn, bestW = i, in, w
		}
	}
	return best
}

// P2C is the power of two choices on in-flight requests (Mitzenmacher):
// two distinct random pickable targets, the one with the lower
// (in-flight+1)/weight wins. Safe for concurrent use.
type P2C struct{ set *Set }

// NewP2C returns a power-of-two-choices balancer over set.
func NewP2C(set *Set) *P2C { return &P2C{set: set} }

// Pick implements Balancer; key is ignored.
func (p *P2C) Pick(key, skip uint64) int { return p.set.pickTwo(skip, false) }

// pickTwo is the power of two choices: of two random pickable targets, the
// one with the lower load, (in-flight+1)/weight or, with ewma, the
// peak-EWMA cost.
func (s *Set) pickTwo(skip uint64, ewma bool) int {
	v := s.view.Load()
	a, b, ok := s.two(v, skip)
	if !ok {
		return s.scan(v, 0, skip)
	}
	if a == b {
		return a
	}
	if ewma {
		def := float64frombits(s.ewmaMean.Load())
		if s.cost(a, def) <= s.cost(b, def) {
			return a
		}
		return b
	}
	ta, tb := s.targets[a], s.targets[b]
	if (ta.inflight.Load()+1)*int64(s.weights[b]) <= (tb.inflight.Load()+1)*int64(s.weights[a]) {
		return a
	}
	return b
}

// two draws two distinct pickable indexes with one random number. With one
// of them unusable, both are the other; ok is false when neither is usable
// (the caller scans).
func (s *Set) two(v *view, skip uint64) (a, b int, ok bool) {
	n := len(v.pick)
	if n < 2 {
		return 0, 0, false
	}
	r := rand.Uint64()
	i := fastrange(uint32(r), n)
	j := fastrange(uint32(r>>32), n-1)
	if j >= i {
		j++
	}
	a, b = int(v.pick[i]), int(v.pick[j])
	ua, ub := s.usable(a, skip, v.panic), s.usable(b, skip, v.panic)
	switch {
	case ua && ub:
		return a, b, true
	case ua:
		return a, a, true
	case ub:
		return b, b, true
	}
	return 0, 0, false
}

// P2CEWMA is the power of two choices on peak-EWMA latency × (in-flight+1)
// ÷ weight, as Finagle's and Linkerd's "p2c + peak EWMA" balancers. Latency
// comes from Target.Observe. An untried target costs the mean EWMA of the
// set's tried targets (recomputed by Set.Tick), so it is neither starved
// (as a large penalty would) nor flooded (as a zero cost would): the
// in-flight factor still applies. Safe for concurrent use.
type P2CEWMA struct{ set *Set }

// NewP2CEWMA returns a power-of-two-choices peak-EWMA balancer over set.
func NewP2CEWMA(set *Set) *P2CEWMA { return &P2CEWMA{set: set} }

// Pick implements Balancer; key is ignored.
func (p *P2CEWMA) Pick(key, skip uint64) int { return p.set.pickTwo(skip, true) }

// cost is target i's peak-EWMA load; def stands in for an untried EWMA.
func (s *Set) cost(i int, def float64) float64 {
	t := s.targets[i]
	e := t.ewmaLoad()
	if e == 0 {
		e = def
	}
	if e == 0 {
		e = 1 // nothing observed anywhere yet: plain least loaded
	}
	return e * float64(t.inflight.Load()+1) / float64(s.weights[i])
}
