package lb

import "math/rand/v2"

// Random picks a target at random in proportion to its weight, by Vose's
// alias method: one 64-bit random draw and two table loads per pick. It is
// safe for concurrent use (math/rand/v2 top-level functions).
type Random struct {
	set   *Set
	prob  []uint32 // acceptance threshold of column i, scaled to 1<<32
	alias []uint16
	equal bool // all weights equal: the alias table is not needed
}

// NewRandom returns a weighted random balancer over set.
func NewRandom(set *Set) *Random {
	r := &Random{set: set, equal: true}
	n := len(set.weights)
	for _, w := range set.weights {
		r.equal = r.equal && w == set.weights[0]
	}
	if r.equal || n == 0 {
		return r
	}
	r.prob, r.alias = make([]uint32, n), make([]uint16, n)
	var sum float64
	for _, w := range set.weights {
		sum += float64(w)
	}
	scaled := make([]float64, n)
	var small, large []int
	for i, w := range set.weights {
		scaled[i] = float64(w) * float64(n) / sum
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		r.prob[s], r.alias[s] = uint32(scaled[s]*(1<<32)), uint16(l)
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large, small = large[:len(large)-1], append(small, l)
		}
	}
	for _, i := range append(small, large...) {
		r.prob[i], r.alias[i] = ^uint32(0), uint16(i)
	}
	return r
}

// Pick implements Balancer; key is ignored.
func (r *Random) Pick(key, skip uint64) int {
	v := r.set.view.Load()
	if len(v.pick) == 0 {
		return -1
	}
	for try := 0; try < 3; try++ {
		x := rand.Uint64()
		var i int
		if r.equal {
			// All targets weigh the same: draw among the pickable ones.
			i = int(v.pick[fastrange(uint32(x), len(v.pick))])
		} else if i = fastrange(uint32(x), len(r.prob)); uint32(x>>32) >= r.prob[i] {
			i = int(r.alias[i])
		}
		if r.set.usable(i, skip, v.panic) {
			return i
		}
	}
	return r.set.scan(v, fastrange(rand.Uint32(), len(v.pick)), skip)
}
