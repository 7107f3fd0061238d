package lb

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// rotor is a round-robin cursor without a shared counter. One atomic
// counter costs ~35ns a pick on 2 cores: its cache line moves between the
// cores on every pick, and sharding it over randomly chosen counters does
// not help (a random shard was last written by the other core about half
// the time; measured, same ~35ns). What helps is affinity: the cursors live
// in a sync.Pool, whose Get and Put go to the current P's private slot
// first, so each P steps its own cursor with plain stores (~4ns a pick).
// A cursor is used by one goroutine between Get and Put, never shared.
//
// Each cursor is an exact rotation from a random start, so each index gets
// the same share to within one pick per cursor ever made; the pool drops
// cursors at GC, so a few are made per GC cycle (made counts them). The
// global order is not a strict cycle.
type rotor struct {
	p    sync.Pool
	made atomic.Uint64
}

// cursor is padded to a cache line so that the cursors of two Ps never
// share one.
type cursor struct {
	n uint32
	_ [cacheLine - 4]byte
}

// next returns the next value of the current P's cursor.
func (r *rotor) next() uint32 {
	c, _ := r.p.Get().(*cursor)
	if c == nil {
		// slow path: a new P, or the pool was emptied by GC.
		c = &cursor{n: rand.Uint32()}
		r.made.Add(1)
	}
	n := c.n
	c.n++
	r.p.Put(c)
	return n
}

// RoundRobin picks the available targets in turn. It is safe for concurrent
// use; see rotor for how picks avoid a shared counter.
type RoundRobin struct {
	r   rotor
	set *Set
}

// NewRoundRobin returns a round-robin balancer over set.
func NewRoundRobin(set *Set) *RoundRobin { return &RoundRobin{set: set} }

// Pick implements Balancer; key is ignored.
func (rr *RoundRobin) Pick(key, skip uint64) int {
	v := rr.set.view.Load()
	n := uint32(len(v.pick))
	if n == 0 {
		return -1
	}
	j := fastmod(rr.r.next(), v.mod, n)
	// fast path: the turn's target is usable.
	if i := int(v.pick[j]); rr.set.usable(i, skip, v.panic) {
		return i
	}
	return rr.set.next(v, int(j)+1, skip)
}

// next is the slow path of rotating policies: the first usable target of
// v.pick from index start on, or -1.
func (s *Set) next(v *view, start int, skip uint64) int {
	n := len(v.pick)
	for k := 0; k < n; k++ {
		j := (start + k) % n
		if i := int(v.pick[j]); s.usable(i, skip, v.panic) {
			return i
		}
	}
	return -1
}
