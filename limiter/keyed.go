package limiter

import (
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// KeyedOptions tunes a Keyed store. The zero value is usable.
type KeyedOptions struct {
	// MaxKeys is the most keys held at once. When a shard is full, the keys
	// that have been idle longest (smallest TAT) are evicted, an eighth of
	// the shard at a time. Zero means 1,000,000. The cap is enforced per shard
	// (MaxKeys/Shards each), so the total stays at or below MaxKeys.
	MaxKeys int
	// Shards is the number of independently locked shards, a power of two.
	// Zero means 256, fewer when MaxKeys is small (at least 64 keys per shard).
	Shards int
}

// DefaultMaxKeys is KeyedOptions.MaxKeys when zero.
const DefaultMaxKeys = 1_000_000

// Keyed is a set of GCRA buckets, one per key (consumer, client IP, header
// value...), all with the same Limit. It is safe for concurrent use.
//
// Keys are identified by their 64-bit xxhash only; the key bytes are never
// stored. Two distinct keys with equal hashes share one bucket. With n live
// keys the chance that any pair collides is about n²/2⁶⁵ (3e-8 at one
// million keys), and a collision only makes two clients share a limit, so
// that is the trade for 16 bytes of state per key and no string storage.
//
// Layout: the top hash bits pick a shard; each shard is an open-addressing
// table (linear probing, load factor ≤ 3/4) of {hash, TAT} atomic pairs.
//
//   - Fast path, an existing key: probe the table with atomic loads and run
//     GCRA on the slot's TAT. No lock, no allocation, no write on denial.
//   - Slow path, a new key: take the shard lock, probe again, fill an empty
//     slot (TAT first, then hash, so a reader that sees the hash sees the TAT).
//   - Rebuild, when the table reaches its load limit: under the lock, every
//     slot's TAT is swapped with a "frozen" marker, which makes concurrent
//     fast-path CASes on the old table fail and go to the slow path, so no
//     admission is lost. Idle keys (TAT ≤ now: at full burst, the same as an
//     absent key) are dropped, which is lossless; if the shard is still over
//     its cap the longest idle are evicted; the rest move into a new table
//     (grown or shrunk) published with an atomic pointer. Old tables are never
//     reused, so readers cannot be fooled by a slot recycled under them.
type Keyed struct {
	g           GCRA
	shards      []shard
	shardShift  uint
	maxPerShard int
	keepOnEvict int
	maxSlots    int
}

type slot struct {
	hash atomic.Uint64 // 0: empty
	tat  atomic.Int64
}

type table struct {
	slots []slot
	mask  uint64
	limit int // rebuild before holding more than this many keys
}

type shard struct {
	tab atomic.Pointer[table]
	mu  sync.Mutex
	n   int // keys in tab; under mu
	_   [cacheLine - 24]byte
}

const minSlots = 16

// NewKeyed returns a keyed store for l, or the validation error of l or o.
func NewKeyed(l Limit, o KeyedOptions) (*Keyed, error) {
	g, err := NewGCRA(l)
	if err != nil {
		return nil, err
	}
	maxKeys := o.MaxKeys
	if maxKeys == 0 {
		maxKeys = DefaultMaxKeys
	}
	if maxKeys < 0 {
		return nil, fmt.Errorf("limiter: max_keys must be >= 0 (0 means %d); got %d", DefaultMaxKeys, maxKeys)
	}
	n := o.Shards
	if n == 0 {
		n = 256
		for n > 1 && maxKeys/n < 64 {
			n /= 2
		}
	}
	if n < 1 || n&(n-1) != 0 {
		return nil, fmt.Errorf("limiter: shards must be a power of two; got %d", n)
	}
	k := &Keyed{g: g, shards: make([]shard, n), shardShift: uint(64 - bits.TrailingZeros(uint(n)))}
	k.maxPerShard = max(1, maxKeys/n) // n*maxPerShard <= MaxKeys
	k.keepOnEvict = k.maxPerShard - max(1, k.maxPerShard/8)
	k.maxSlots = tableSize(k.maxPerShard*4/3 + 1)
	for i := range k.shards {
		k.shards[i].tab.Store(k.newTable(minSlots))
	}
	return k, nil
}

func tableSize(n int) int {
	return max(minSlots, 1<<bits.Len(uint(n-1)))
}

func (k *Keyed) newTable(size int) *table {
	size = min(size, k.maxSlots)
	return &table{slots: make([]slot, size), mask: uint64(size - 1), limit: min(size*3/4, k.maxPerShard)}
}

// Allow checks one request for key at now (Unix ns). key is only hashed,
// not retained.
func (k *Keyed) Allow(now int64, key []byte) Decision {
	// the body of AllowHash, not a call to it: one frame less (and one copy
	// of the Decision less) is a fifth of the one-key cost
	h := xxhash.Sum64(key)
	if h == 0 {
		h = 1
	}
	if sl := k.shards[h>>k.shardShift].tab.Load().lookup(h); sl != nil {
		if d, ok := k.g.allow(&sl.tat, now, k.g.interval); ok {
			return d
		}
	}
	return k.allowSlow(&k.shards[h>>k.shardShift], now, h)
}

// AllowString is Allow for a string key.
func (k *Keyed) AllowString(now int64, key string) Decision {
	return k.AllowHash(now, xxhash.Sum64String(key))
}

// AllowHash is Allow for a key already hashed with xxhash.Sum64.
func (k *Keyed) AllowHash(now int64, h uint64) Decision {
	if h == 0 {
		h = 1 // 0 marks an empty slot
	}
	// fast path: an existing key, lock-free
	if sl := k.shards[h>>k.shardShift].tab.Load().lookup(h); sl != nil {
		if d, ok := k.g.allow(&sl.tat, now, k.g.interval); ok {
			return d
		}
		// frozen: a rebuild is moving the key
	}
	return k.allowSlow(&k.shards[h>>k.shardShift], now, h)
}

// lookup returns h's slot, or nil if h is absent. Lock-free.
func (t *table) lookup(h uint64) *slot {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		switch sl.hash.Load() {
		case h:
			return sl
		case 0:
			return nil
		}
	}
}

// allowSlow inserts h, or finds it in a table published by a rebuild.
func (k *Keyed) allowSlow(s *shard, now int64, h uint64) Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	tab := s.tab.Load()
	if sl := tab.lookup(h); sl != nil {
		d, _ := k.g.allow(&sl.tat, now, k.g.interval) // never frozen under mu
		return d
	}
	if s.n >= tab.limit {
		tab = k.rebuild(s, now, true)
	}
	sl := tab.empty(h)
	sl.tat.Store(now + k.g.interval)
	sl.hash.Store(h)
	s.n++
	return k.g.Allowed(k.g.interval)
}

// empty returns the first free slot on h's probe sequence; t has room.
func (t *table) empty(h uint64) *slot {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		if sl := &t.slots[i]; sl.hash.Load() == 0 {
			return sl
		}
	}
}

type entry struct {
	hash uint64
	tat  int64
}

// rebuild freezes s's table, drops idle keys (losslessly), evicts the
// longest idle if evict and s is still at its cap, and publishes a new table sized for
// the rest. Called with s.mu held.
func (k *Keyed) rebuild(s *shard, now int64, evict bool) *table {
	old := s.tab.Load()
	live := make([]entry, 0, s.n)
	for i := range old.slots {
		sl := &old.slots[i]
		h := sl.hash.Load()
		if h == 0 {
			continue
		}
		// Swap, not Store: a fast-path CAS that won before this keeps its
		// admission in t; one that comes after fails on frozen and retries
		// under mu on the new table.
		t := sl.tat.Swap(frozen)
		if t > now {
			live = append(live, entry{h, t})
		}
	}
	if evict && len(live) >= k.maxPerShard {
		// full of busy keys: evict the longest idle, i.e. smallest TAT
		slices.SortFunc(live, func(a, b entry) int { return cmpInt64(b.tat, a.tat) })
		live = live[:k.keepOnEvict]
	}
	tab := k.newTable(tableSize(2 * max(len(live), 1)))
	for _, e := range live {
		sl := tab.empty(e.hash)
		sl.tat.Store(e.tat)
		sl.hash.Store(e.hash)
	}
	s.tab.Store(tab)
	s.n = len(live)
	return tab
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Len returns the number of keys held. It takes every shard lock; not for
// the request path.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += s.n
		s.mu.Unlock()
	}
	return n
}

// Sweep drops idle keys (TAT ≤ now) from every shard, which changes no
// decision; it only returns memory. Keyed also does this by itself whenever
// a shard fills, so calling Sweep (e.g. every minute) is optional.
func (k *Keyed) Sweep(now int64) {
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		k.rebuild(s, now, false)
		s.mu.Unlock()
	}
}
