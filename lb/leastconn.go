package lb

import "math/rand/v2"

// LeastConn picks the target with the fewest in-flight requests relative to
// its weight, (in-flight+1)/weight (Envoy's weighted least request with
// bias 1; the +1 makes an idle heavy target win over an idle light one).
// It scans every pickable target from a random start, so ties go to a
// random one rather than always to index 0 (as vmauth's
// getLeastLoadedBackendURL does with its offset). O(targets) per pick; P2C
// is the O(1) alternative. Safe for concurrent use.
type LeastConn struct{ set *Set }

// NewLeastConn returns a least-connections balancer over set.
func NewLeastConn(set *Set) *LeastConn { return &LeastConn{set: set} }

// Pick implements Balancer; key is ignored.
func (lc *LeastConn) Pick(key, skip uint64) int {
	v := lc.set.view.Load()
	if len(v.pick) == 0 {
		return -1
	}
	return lc.set.scan(v, fastrange(rand.Uint32(), len(v.pick)), skip)
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
