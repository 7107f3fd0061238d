package jwt

import (
	"sync"
	"sync/atomic"
	"time"
)

// cache holds verified tokens by their full text, as Envoy's jwt_authn
// does: a 64-bit hash only picks the shard, the map compares every byte,
// so a forged hash collision finds nothing. Shards bound lock contention;
// each holds at most perShard tokens.
type cache struct {
	shards   []shard
	mask     uint64
	perShard int
}

// shard is one lock and map of the cache, padded to its own cache lines.
type shard struct {
	mu           sync.RWMutex
	m            map[string]*Token
	hits, misses atomic.Uint64
	_            [64]byte
}

const maxShards = 64

func newCache(size int) *cache {
	n := 1
	for n < maxShards && n*16 < size {
		n *= 2
	}
	c := &cache{shards: make([]shard, n), mask: uint64(n - 1), perShard: (size + n - 1) / n}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*Token)
	}
	return c
}

func (c *cache) shard(h uint64) *shard { return &c.shards[h&c.mask] }

func (c *cache) stats() (hits, misses uint64) {
	for i := range c.shards {
		hits += c.shards[i].hits.Load()
		misses += c.shards[i].misses.Load()
	}
	return hits, misses
}

// get returns the cached token whose text is b, or nil. It allocates
// nothing: the compiler does not copy string(b) in a map index.
func (s *shard) get(b []byte) *Token {
	s.mu.RLock()
	t := s.m[string(b)]
	s.mu.RUnlock()
	return t
}

func (s *shard) remove(b []byte) {
	s.mu.Lock()
	delete(s.m, string(b))
	s.mu.Unlock()
}

// put caches t under raw. A full shard first drops its expired tokens,
// then, if still full, one arbitrary token (map iteration order is
// random, which makes this random eviction).
func (s *shard) put(raw string, t *Token, now time.Time, leeway time.Duration, perShard int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= perShard {
		for k, o := range s.m {
			if !o.exp.IsZero() && !now.Before(o.exp.Add(leeway)) {
				delete(s.m, k)
			}
		}
		for k := range s.m {
			if len(s.m) < perShard {
				break
			}
			delete(s.m, k)
		}
	}
	s.m[raw] = t
}
