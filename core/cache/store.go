package cache

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/fastcache"
	"github.com/cespare/xxhash/v2"
)

// store is the byte store shared by every route's cache (fastcache: 512
// buckets of ring-buffered 64KiB chunks, no per-entry GC cost), with an
// index of the keys stored so that purge can find keys by prefix, which
// fastcache cannot iterate. It is safe for concurrent use.
type store struct {
	c        *fastcache.Cache
	maxBytes int
	shards   [indexShards]indexShard
	// evicted counts index keys found gone from fastcache (evicted, or
	// lost to a hash collision) when a shard is pruned.
	evicted atomic.Uint64
}

const (
	indexShards = 16
	// pruneFloor is the smallest shard size that is pruned.
	pruneFloor = 1024
	// bigSuffix marks the key under which an entry over fastcache's 64KiB
	// limit is stored with SetBig; the key itself holds a kindBig marker.
	bigSuffix = "\x00"
	// smallMax is the largest key+value stored with Set.
	smallMax = 64<<10 - 64
)

// indexShard is a part of the key index, by key hash.
type indexShard struct {
	mu   sync.Mutex
	keys map[string]struct{}
	// pruneAt is the size at which the shard is next pruned of keys
	// fastcache no longer holds.
	pruneAt int
	_       [40]byte // own cache line
}

func newStore(maxBytes int) *store {
	s := &store{c: fastcache.New(maxBytes), maxBytes: maxBytes}
	for i := range s.shards {
		s.shards[i].keys = make(map[string]struct{})
		s.shards[i].pruneAt = pruneFloor
	}
	return s
}

// get appends the value of key to dst and reports whether it was found;
// an entry stored big is read whole. It allocates nothing when dst has
// room.
func (s *store) get(dst, key []byte) ([]byte, bool) {
	n := len(dst)
	dst, ok := s.c.HasGet(dst, key)
	if !ok || len(dst) == n || dst[n] != kindBig {
		return dst, ok && len(dst) > n
	}
	// slow path: an entry over 64KiB, read from its chunks.
	dst = dst[:n]
	k := append(append(make([]byte, 0, len(key)+len(bigSuffix)), key...), bigSuffix...)
	v := s.c.GetBig(dst, k)
	return v, len(v) > n
}

// set stores value under key and indexes key.
func (s *store) set(key, value []byte) {
	if len(key)+len(value) <= smallMax {
		s.c.Set(key, value)
	} else {
		big := append(append([]byte(nil), key...), bigSuffix...)
		s.c.SetBig(big, value)
		s.c.Set(key, []byte{kindBig})
	}
	s.index(key)
}

// setVary stores a vary spec; it is not indexed apart from its variants'
// keys, which start with it.
func (s *store) setVary(key, spec []byte) {
	s.c.Set(key, spec)
	s.index(key)
}

func (s *store) shard(key string) *indexShard {
	return &s.shards[xxhash.Sum64String(key)%indexShards]
}

// index adds key to the index, pruning the shard of keys fastcache has
// dropped once it has doubled since the last pruning.
func (s *store) index(key []byte) {
	sh := s.shard(string(key)) // no allocation: the conversion does not escape
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.keys[string(key)]; ok {
		return
	}
	sh.keys[string(key)] = struct{}{}
	if len(sh.keys) >= sh.pruneAt {
		for k := range sh.keys {
			if !s.c.Has([]byte(k)) {
				delete(sh.keys, k)
				s.evicted.Add(1)
			}
		}
		sh.pruneAt = max(pruneFloor, 2*len(sh.keys))
	}
}

// purge deletes key, the variants of key (vary values, consumers: keys
// that continue with " "), or with prefix every key starting with key.
// It returns how many stored responses it deleted (a vary spec is not
// one).
func (s *store) purge(key string, prefix bool) int {
	n := 0
	var buf []byte
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k := range sh.keys {
			if !matches(k, key, prefix) {
				continue
			}
			delete(sh.keys, k)
			buf = append(buf[:0], k...)
			v := s.c.Get(nil, buf)
			if len(v) > 0 && (v[0] == kindEntry || v[0] == kindBig) {
				n++
			}
			s.c.Del(buf)
			if len(v) > 0 && v[0] == kindBig {
				s.c.Del(append(buf, bigSuffix...))
			}
		}
		sh.mu.Unlock()
	}
	return n
}

func matches(k, key string, prefix bool) bool {
	if prefix {
		return strings.HasPrefix(k, key)
	}
	return k == key || (strings.HasPrefix(k, key) && k[len(key)] == ' ')
}

// keys returns how many keys the index holds.
func (s *store) keys() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.keys)
		sh.mu.Unlock()
	}
	return n
}

// stats returns fastcache's statistics.
func (s *store) stats() fastcache.Stats {
	var st fastcache.Stats
	s.c.UpdateStats(&st)
	return st
}

func (s *store) reset() {
	s.c.Reset()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		clear(sh.keys)
		sh.mu.Unlock()
	}
}
