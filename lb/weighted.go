package lb

import "fmt"

// maxSchedule bounds the smooth weighted round-robin schedule.
const maxSchedule = 1 << 20

// walkSteps bounds the walk of the slow paths along a schedule, table or
// ring before they fall back to a scan of the set.
const walkSteps = 64

// Weighted is smooth weighted round robin as in nginx
// (ngx_http_upstream_get_peer): the schedule nginx would produce for the
// weights, one full cycle of sum(weights)/gcd entries, is precomputed and
// stepped by per-P cursors (see rotor), no mutex, no shared counter. An unusable
// target's turn goes to the next usable entry of the schedule. It is safe
// for concurrent use.
type Weighted struct {
	r        rotor
	set      *Set
	schedule []uint16
	mod      uint64
}

// NewWeighted returns a smooth weighted round-robin balancer over set. It
// fails when the reduced weights sum to more than 1<<20.
func NewWeighted(set *Set) (*Weighted, error) {
	sched, err := smoothSchedule(set.weights)
	if err != nil {
		return nil, err
	}
	w := &Weighted{set: set, schedule: sched, mod: fastmodM(uint32(max(len(sched), 1)))}
	return w, nil
}

// smoothSchedule returns one cycle of nginx's smooth weighted round robin.
func smoothSchedule(weights []int32) ([]uint16, error) {
	g, sum := int64(0), int64(0)
	for _, w := range weights {
		g = gcd(g, int64(w))
	}
	for _, w := range weights {
		sum += int64(w) / g
	}
	if sum > maxSchedule {
		return nil, fmt.Errorf("lb: weights sum to %d after dividing by their gcd; weighted balancing supports at most %d; use smaller weights", sum, maxSchedule)
	}
	current := make([]int64, len(weights))
	sched := make([]uint16, sum)
	for k := range sched {
		best := -1
		for i, w := range weights {
			current[i] += int64(w) / g
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= sum
		sched[k] = uint16(best)
	}
	return sched, nil
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Pick implements Balancer; key is ignored.
func (w *Weighted) Pick(key, skip uint64) int {
	v := w.set.view.Load()
	n := uint32(len(w.schedule))
	if n == 0 {
		return -1
	}
	j := fastmod(w.r.next(), w.mod, n)
	if i := int(w.schedule[j]); w.set.usable(i, skip, v.panic) {
		return i
	}
	// slow path: the next usable entries of the schedule, then a scan.
	for k := uint32(1); k < min(n, walkSteps); k++ {
		if j++; j == n {
			j = 0
		}
		if i := int(w.schedule[j]); w.set.usable(i, skip, v.panic) {
			return i
		}
	}
	return w.set.scan(v, 0, skip)
}
