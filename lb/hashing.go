package lb

import "math"

// walk is the slow path of the hashing policies. seq is the key's
// preference order read circularly from pos: the Maglev table (next slots)
// or the ring's point owners (next points clockwise). It returns the first
// usable target that is under its bounded load (c > 0; Mirrokni et al.,
// "Consistent Hashing with Bounded Loads", 2017). After walkSteps entries
// it settles for the least loaded usable target visited; when none was,
// for the least loaded of the whole set.
func (s *Set) walk(v *view, seq []uint16, pos int, skip uint64, c float64) int {
	var limit float64 // c × (total in-flight + 1) / available weight
	if c > 0 {
		limit = c * float64(s.shared.inflight.Load()+1) / float64(v.weight)
	}
	best, n := -1, len(seq)
	var bestIn, bestW int64
	for k := 0; k < min(n, walkSteps); k++ {
		i := int(seq[pos])
		if pos++; pos == n {
			pos = 0
		}
		if !s.usable(i, skip, v.panic) {
			continue
		}
		if c == 0 {
			return i
		}
		in, w := s.targets[i].inflight.Load()+1, int64(s.weights[i])
		// Floor, not the paper's ceiling: a target never exceeds c × its
		// share (with m in flight per target, at most ⌊c·m⌋ ≤ c·m), at the
		// cost of one request of headroom; but always room for one.
		if float64(in) <= math.Max(1, math.Floor(limit*float64(w))) {
			return i
		}
		if best < 0 || in*bestW < bestIn*w {
			best, bestIn, bestW = i, in, w
		}
	}
	if best >= 0 {
		return best
	}
	return s.scan(v, pos%len(v.pick), skip)
}
