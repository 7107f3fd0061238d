package lb

import (
	"fmt"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Maglev is consistent hashing by Maglev's lookup table (Eisenbud et al.,
// "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016).
// Each target fills the table from its own permutation, (offset + j×skip)
// mod M, both from the xxhash of its address, so a target keeps its slots
// across reloads wherever it sits in the list. Weights are honoured by
// turns: per round, a target of weight w takes a turn w/wmax of the time.
//
// A key's slot is hi64(key × M), a multiply instead of a division. An
// unusable or (with BoundedLoad) overloaded target hands the key to the
// targets of the next slots, the key's fallback order. Safe for concurrent
// use.
type Maglev struct {
	set   *Set
	table []uint16
	size  uint64
	c     float64
}

// NewMaglev builds the Maglev table over set; at 100 targets and M = 65537
// it takes about a millisecond, fine at reload.
func NewMaglev(set *Set, opts Options) (*Maglev, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	n := len(set.targets)
	size := uint64(opts.TableSize)
	if size == 0 {
		size = nextPrime(uint64(max(65537, 100*n)))
	} else if size <= uint64(n) || size > 1<<32 || !isPrime(size) {
		return nil, fmt.Errorf("lb: maglev table size %d must be a prime above the %d targets; leave it 0 for the default", size, n)
	}
	m := &Maglev{set: set, size: size, c: opts.BoundedLoad}
	if n > 0 {
		m.table = maglevTable(set, size)
	}
	return m, nil
}

// maglevTable populates the lookup table (Maglev paper, Pseudocode 1, with
// weighted turns).
func maglevTable(set *Set, size uint64) []uint16 {
	n := len(set.targets)
	const empty = 0xffff // MaxTargets keeps indexes below it
	pos, skip := make([]uint64, n), make([]uint64, n)
	credit := make([]int64, n)
	var wmax int64
	for i, t := range set.targets {
		h := xxhash.Sum64String(t.addr)
		pos[i] = h % size
		skip[i] = mix64(h)%(size-1) + 1
		wmax = max(wmax, int64(set.weights[i]))
	}
	table := make([]uint16, size)
	for i := range table {
		table[i] = empty
	}
	for filled := uint64(0); filled < size; {
		for i := 0; i < n && filled < size; i++ {
			// weighted turns: a target takes a turn each time its credit
			// reaches the top weight.
			if credit[i] += int64(set.weights[i]); credit[i] < wmax {
				continue
			}
			credit[i] -= wmax
			for table[pos[i]] != empty {
				pos[i] = (pos[i] + skip[i]) % size
			}
			table[pos[i]] = uint16(i)
			pos[i] = (pos[i] + skip[i]) % size
			filled++
		}
	}
	return table
}

// Pick implements Balancer: the key's table slot, else its fallback order.
func (m *Maglev) Pick(key, skip uint64) int {
	v := m.set.view.Load()
	if len(v.pick) == 0 {
		return -1
	}
	slot, _ := bits.Mul64(key, m.size)
	// fast path: the key's own target is usable and bounds are off.
	if i := int(m.table[slot]); m.c == 0 && m.set.usable(i, skip, v.panic) {
		return i
	}
	return m.set.walk(v, m.table, int(slot), skip, m.c)
}

// Lookup returns the table's target for key, ignoring health, skip and
// load: the pure consistent-hash mapping, for tests and admin views.
func (m *Maglev) Lookup(key uint64) int {
	if len(m.table) == 0 {
		return -1
	}
	slot, _ := bits.Mul64(key, m.size)
	return int(m.table[slot])
}

// TableSize returns the table size M.
func (m *Maglev) TableSize() int { return int(m.size) }

// mix64 is the splitmix64 finalizer: a second hash of an address for the
// Maglev skip, independent of the offset.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func nextPrime(x uint64) uint64 {
	for !isPrime(x) {
		x++
	}
	return x
}

func isPrime(x uint64) bool {
	if x < 2 {
		return false
	}
	for d := uint64(2); d*d <= x; d++ {
		if x%d == 0 {
			return false
		}
	}
	return true
}
