package limiter

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Concurrency caps the requests in flight, e.g. per route, with an optional
// bounded wait queue. It is safe for concurrent use. Every Acquire that
// returns true must be paired with one Release.
//
// The slots are the buffer of a channel: Acquire sends, Release receives.
// Fast path (a free slot): one non-blocking send, no allocation. Slow path:
// at most queue callers block on the send, each for at most wait; Go wakes
// blocked senders in FIFO order as slots are released. A caller arriving
// while a slot is free may still take it ahead of the queue (barging),
// which keeps the fast path a single channel operation.
type Concurrency struct {
	sem     chan struct{}
	waiting atomic.Int64
	queue   int64
	wait    time.Duration
}

// NewConcurrency returns a limiter admitting max requests at once; up to
// queue more wait up to wait for a slot. queue 0 or wait 0 means no waiting:
// a request over max is rejected at once.
func NewConcurrency(max, queue int, wait time.Duration) (*Concurrency, error) {
	if max <= 0 {
		return nil, fmt.Errorf("limiter: max_concurrency must be > 0; got %d", max)
	}
	if queue < 0 {
		return nil, fmt.Errorf("limiter: queue must be >= 0 (0 means no queue); got %d", queue)
	}
	if wait < 0 {
		return nil, fmt.Errorf("limiter: queue wait must be >= 0 (0 means no queue); got %s", wait)
	}
	if wait == 0 {
		queue = 0
	}
	return &Concurrency{sem: make(chan struct{}, max), queue: int64(queue), wait: wait}, nil
}

// Acquire takes a slot, waiting in the queue if there is room there. It
// reports whether a slot was taken; false means reject (queue full or the
// wait timed out).
func (c *Concurrency) Acquire() bool {
	select {
	case c.sem <- struct{}{}:
		return true // fast path
	default:
	}
	if c.queue == 0 {
		return false
	}
	return c.acquireSlow()
}

func (c *Concurrency) acquireSlow() bool {
	defer c.waiting.Add(-1)
	if c.waiting.Add(1) > c.queue {
		return false // queue full: never an unbounded queue
	}
	t := acquireTimer(c.wait)
	defer releaseTimer(t)
	select {
	case c.sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// Release frees a slot taken by Acquire.
func (c *Concurrency) Release() { <-c.sem }

// InFlight returns the number of slots taken.
func (c *Concurrency) InFlight() int { return len(c.sem) }

// Waiting returns the number of callers in the queue.
func (c *Concurrency) Waiting() int { return int(c.waiting.Load()) }

var timerPool sync.Pool

// acquireTimer returns a started timer. Since Go 1.23 a stopped timer's
// channel never yields a stale value, so pooled timers can be Reset safely.
func acquireTimer(d time.Duration) *time.Timer {
	if v := timerPool.Get(); v != nil {
		t := v.(*time.Timer)
		t.Reset(d)
		return t
	}
	return time.NewTimer(d)
}

func releaseTimer(t *time.Timer) {
	t.Stop()
	timerPool.Put(t)
}

// KeyedConcurrency caps the requests in flight per key (consumer, client
// IP...), without a queue. It is safe for concurrent use. Only keys with a
// request in flight take memory: a key's counter is deleted when it drops
// to zero, so memory is bounded by the requests in flight. Keys are
// identified by their xxhash (see Keyed for the collision trade-off).
type KeyedConcurrency struct {
	max    int32
	shards [64]kcShard
}

type kcShard struct {
	mu sync.Mutex
	m  map[uint64]int32
	_  [cacheLine - 16]byte
}

// NewKeyedConcurrency returns a limiter admitting max requests at once per key.
func NewKeyedConcurrency(max int) (*KeyedConcurrency, error) {
	if max <= 0 {
		return nil, fmt.Errorf("limiter: max_concurrency must be > 0; got %d", max)
	}
	c := &KeyedConcurrency{max: int32(max)}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]int32)
	}
	return c, nil
}

// Acquire takes a slot for key; false means key already has max in flight.
// On true, call Release with the same key (or AcquireHash/ReleaseHash with
// the same hash).
func (c *KeyedConcurrency) Acquire(key []byte) bool { return c.AcquireHash(xxhash.Sum64(key)) }

// Release frees a slot taken by Acquire(key).
func (c *KeyedConcurrency) Release(key []byte) { c.ReleaseHash(xxhash.Sum64(key)) }

// AcquireHash is Acquire for a key hashed with xxhash.Sum64.
func (c *KeyedConcurrency) AcquireHash(h uint64) bool {
	s := &c.shards[h>>58]
	s.mu.Lock()
	n := s.m[h]
	ok := n < c.max
	if ok {
		s.m[h] = n + 1
	}
	s.mu.Unlock()
	return ok
}

// ReleaseHash frees a slot taken by AcquireHash(h).
func (c *KeyedConcurrency) ReleaseHash(h uint64) {
	s := &c.shards[h>>58]
	s.mu.Lock()
	if n := s.m[h]; n > 1 {
		s.m[h] = n - 1
	} else {
		delete(s.m, h)
	}
	s.mu.Unlock()
}

// InFlight returns the requests in flight for key.
func (c *KeyedConcurrency) InFlight(key []byte) int {
	h := xxhash.Sum64(key)
	s := &c.shards[h>>58]
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.m[h])
}
