package lb

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Envoy's retry budget defaults, for core's config defaults.
const (
	DefaultBudgetRatio = 0.2
	DefaultMinRetries  = 3
)

// Budget is an upstream's retry budget as Envoy's retry_budget: a retry is
// allowed while active retries < max(minRetries, ratio × active requests).
// The caller passes the active requests (the client's requests, retries
// not included) to TryRetry: it counts them already, in its circuit
// breaker. Safe for concurrent use.
type Budget struct {
	retries atomic.Int64
	_       [cacheLine - 8]byte

	ratio      float64
	minRetries int64
	exhausted  atomic.Uint64
}

// NewBudget returns a retry budget. ratio is the share of active requests
// that may be retrying at once (Envoy budget_percent/100; 0 means no
// budget: every retry is allowed); minRetries is the number of concurrent
// retries always allowed (0 means none beyond the ratio).
func NewBudget(ratio float64, minRetries int) *Budget {
	return &Budget{ratio: max(ratio, 0), minRetries: int64(max(minRetries, 0))}
}

// TryRetry reserves a retry if the budget allows it with active requests
// in flight; each true result is paired with EndRetry when that attempt
// ends. A refusal is counted in Exhausted.
func (b *Budget) TryRetry(active int64) bool {
	if b.ratio == 0 {
		b.retries.Add(1)
		return true
	}
	for {
		r := b.retries.Load()
		if r >= max(b.minRetries, int64(b.ratio*float64(active))) {
			b.exhausted.Add(1)
			return false
		}
		if b.retries.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// EndRetry ends a retry reserved by TryRetry.
func (b *Budget) EndRetry() { b.retries.Add(-1) }

// Retries returns the active retries.
func (b *Budget) Retries() int64 { return b.retries.Load() }

// Exhausted returns how many retries the budget refused (a counter).
func (b *Budget) Exhausted() uint64 { return b.exhausted.Load() }

// Backoff returns the wait before retry number attempt (0 for the first
// retry) with full jitter (AWS "Exponential Backoff and Jitter"): uniform
// in [0, min(cap, base × 2^attempt)). It returns 0 when base ≤ 0 or
// attempt < 0; cap ≤ 0 means no cap.
func Backoff(attempt int, base, cap time.Duration) time.Duration {
	if base <= 0 || attempt < 0 {
		return 0
	}
	d := base
	for range min(attempt, 62) {
		if cap > 0 && d >= cap || d >= 1<<61 {
			break
		}
		d <<= 1
	}
	if cap > 0 && d > cap {
		d = cap
	}
	return rand.N(d)
}
