package lb

import "sync/atomic"

// Breaker is an upstream's circuit breaker in Envoy's sense: limits on
// concurrent requests and on requests waiting for a pool connection. A
// request over a limit is rejected at once (no queue). Limits are atomics,
// so core may keep one Breaker per upstream across reloads and SetLimits.
// Safe for concurrent use.
type Breaker struct {
	active  atomic.Int64
	_       [cacheLine - 8]byte
	pending atomic.Int64
	_       [cacheLine - 8]byte

	maxActive, maxPending atomic.Int64
	rejectedActive        atomic.Uint64
	rejectedPending       atomic.Uint64
}

// NewBreaker returns a breaker allowing maxRequests concurrent requests and
// maxPending requests waiting for a connection; 0 (or less) means no limit.
func NewBreaker(maxRequests, maxPending int) *Breaker {
	b := &Breaker{}
	b.SetLimits(maxRequests, maxPending)
	return b
}

// SetLimits changes the limits (on reload); 0 means no limit. Requests
// already admitted stay admitted.
func (b *Breaker) SetLimits(maxRequests, maxPending int) {
	b.maxActive.Store(int64(max(maxRequests, 0)))
	b.maxPending.Store(int64(max(maxPending, 0)))
}

// TryBegin admits a request if fewer than maxRequests are active. Each
// true result is paired with one End.
func (b *Breaker) TryBegin() bool {
	return tryAcquire(&b.active, b.maxActive.Load(), &b.rejectedActive)
}

// End releases a request admitted by TryBegin.
func (b *Breaker) End() { b.active.Add(-1) }

// TryPending admits a request into the wait for a pool connection if fewer
// than maxPending wait. Each true result is paired with one EndPending.
func (b *Breaker) TryPending() bool {
	return tryAcquire(&b.pending, b.maxPending.Load(), &b.rejectedPending)
}

// EndPending releases a wait admitted by TryPending.
func (b *Breaker) EndPending() { b.pending.Add(-1) }

// Active returns the admitted requests not yet ended.
func (b *Breaker) Active() int64 { return b.active.Load() }

// Pending returns the admitted waits not yet ended.
func (b *Breaker) Pending() int64 { return b.pending.Load() }

// RejectedRequests returns how many TryBegin calls were refused (a counter).
func (b *Breaker) RejectedRequests() uint64 { return b.rejectedActive.Load() }

// RejectedPending returns how many TryPending calls were refused (a counter).
func (b *Breaker) RejectedPending() uint64 { return b.rejectedPending.Load() }

// tryAcquire increments n if it is below limit (0: no limit), exactly:
// concurrent callers can never push n over the limit.
func tryAcquire(n *atomic.Int64, limit int64, rejected *atomic.Uint64) bool {
	if limit == 0 {
		n.Add(1)
		return true
	}
	for {
		v := n.Load()
		if v >= limit {
			rejected.Add(1)
			return false
		}
		if n.CompareAndSwap(v, v+1) {
			return true
		}
	}
}
