// Package limiter holds the gateway's rate and concurrency limiters. It is a
// leaf: no fasthttp, no fastgate package. Subpackage limiter/redis adds the
// cluster-wide backend with the same Decision.
//
// Rate limits use GCRA, the generic cell rate algorithm (ITU-T I.371; as
// popularised by Brandur Leach's "throttled" and redis-cell): a key's whole
// state is one int64, its theoretical arrival time (TAT). A request at now is
// admitted when max(TAT, now) + interval - now <= burst*interval and then
// moves TAT there with one CAS; a denied request only reads TAT. A TAT <= now
// means "full burst available", exactly as if the key had never been seen, so
// such a key can be forgotten without changing any later decision.
//
// Limiter is one bucket (per route), Keyed one bucket per key (consumer,
// IP...). Concurrency and KeyedConcurrency cap requests in flight instead.
//
// Time is passed in as Unix nanoseconds (one time.Now per request, taken by
// the caller), which also lets tests drive limiters on virtual time.
package limiter

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Limit is a rate limit: Rate requests per Per, with bursts of up to Burst
// requests. It is plain data; Validate it (or let a constructor do it).
type Limit struct {
	// Rate is the number of requests admitted per Per in the long run. Must be > 0.
	Rate int
	// Per is the period Rate is counted over, e.g. time.Second. Must be > 0
	// and at least Rate nanoseconds (one request per nanosecond at most).
	Per time.Duration
	// Burst is the most requests admitted at once after an idle period (the
	// quota advertised in RateLimit headers). Zero means Rate. Must be >= 0.
	Burst int
}

// Validate reports the first problem with l, or nil. Messages name the field
// and the fix.
func (l Limit) Validate() error {
	if l.Rate <= 0 {
		return fmt.Errorf("limiter: rate must be > 0; got %d", l.Rate)
	}
	if l.Per <= 0 {
		return fmt.Errorf("limiter: per must be > 0; got %s", l.Per)
	}
	if int64(l.Per) < int64(l.Rate) {
		return fmt.Errorf("limiter: rate %d per %s is above one request per nanosecond; raise per or lower rate", l.Rate, l.Per)
	}
	if l.Burst < 0 {
		return fmt.Errorf("limiter: burst must be >= 0 (0 means rate); got %d", l.Burst)
	}
	interval := int64(l.Per) / int64(l.Rate)
	if int64(l.burst()) > math.MaxInt64/4/interval {
		return fmt.Errorf("limiter: burst %d times interval %s overflows; lower burst", l.burst(), time.Duration(interval))
	}
	return nil
}

func (l Limit) burst() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// Interval returns Per/Rate, the time one request "costs" (emission interval).
func (l Limit) Interval() time.Duration { return l.Per / time.Duration(l.Rate) }

// Window returns the time an empty bucket takes to refill to Burst: the "w"
// of RateLimit-Policy when the quota "q" is Burst.
func (l Limit) Window() time.Duration { return time.Duration(l.burst()) * l.Interval() }

// Decision is the outcome of one check, with what a 429 and the RateLimit
// headers need. It is a small value; returning it allocates nothing.
//
// Headers (draft-ietf-httpapi-ratelimit-headers and the legacy ones):
//
//	RateLimit-Policy: "name";q=Limit;w=<Limit.Window() in seconds>
//	RateLimit: "name";r=Remaining;t=ResetSeconds()
//	X-RateLimit-Limit: Limit, X-RateLimit-Remaining: Remaining, X-RateLimit-Reset: ResetSeconds()
//	Retry-After: RetryAfterSeconds()   (on 429 only)
type Decision struct {
	// Allowed reports whether the request is admitted.
	Allowed bool
	// Limit is the quota: the most requests admitted at once (Burst).
	Limit int
	// Remaining is how many more requests would be admitted right now.
	Remaining int
	// ResetAfter is the time until the quota is full again (Remaining == Limit).
	ResetAfter time.Duration
	// RetryAfter is 0 when Allowed; otherwise the time until a request would be admitted.
	RetryAfter time.Duration
}

// ResetSeconds returns ResetAfter in whole seconds, rounded up.
func (d Decision) ResetSeconds() int64 { return ceilSeconds(d.ResetAfter) }

// RetryAfterSeconds returns RetryAfter in whole seconds, rounded up so that a
// client honouring it is not denied again; at least 1 when denied.
func (d Decision) RetryAfterSeconds() int64 {
	if d.Allowed {
		return 0
	}
	return max(1, ceilSeconds(d.RetryAfter))
}

func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// GCRA is a validated Limit compiled to nanosecond parameters. It is an
// immutable value, safe for concurrent use; the state it works on is a
// caller-owned *atomic.Int64 TAT (zero = never seen). Limiter and Keyed wrap
// it; limiter/redis uses it for its local state.
type GCRA struct {
	interval  int64 // ns per request
	tolerance int64 // burst * interval
	burst     int
}

// frozen is a TAT value no real key has: Keyed marks a slot with it while the
// slot is being moved or evicted, and readers then take the slow path.
const frozen = math.MinInt64

// NewGCRA validates l and compiles it.
func NewGCRA(l Limit) (GCRA, error) {
	if err := l.Validate(); err != nil {
		return GCRA{}, err
	}
	iv := int64(l.Interval())
	return GCRA{interval: iv, tolerance: int64(l.burst()) * iv, burst: l.burst()}, nil
}

// Interval returns the cost of one request in nanoseconds.
func (g GCRA) Interval() int64 { return g.interval }

// Tolerance returns Burst*Interval in nanoseconds.
func (g GCRA) Tolerance() int64 { return g.tolerance }

// Burst returns the quota.
func (g GCRA) Burst() int { return g.burst }

// Allow checks one request at now (Unix ns) against the TAT in tat, moving
// it on admission.
func (g GCRA) Allow(tat *atomic.Int64, now int64) Decision {
	d, _ := g.allow(tat, now, g.interval)
	return d
}

// AllowStep is Allow where an admitted request moves TAT by step ns instead
// of Interval (limiter/redis charges a node's local admissions at its share
// of the cluster's rate). Remaining and the durations are still in requests
// and time of the whole limit.
func (g GCRA) AllowStep(tat *atomic.Int64, now, step int64) Decision {
	d, _ := g.allow(tat, now, step)
	return d
}

// allow is the GCRA step. ok is false only when tat is frozen.
func (g GCRA) allow(tat *atomic.Int64, now, step int64) (d Decision, ok bool) {
	for {
		t := tat.Load()
		if t == frozen {
			return d, false
		}
		base := max(t, now)
		next := base + step
		if next-now > g.tolerance {
			// denied: read only, no write to a shared cache line
			return g.Denied(base-now, next-g.tolerance-now), true
		}
		if tat.CompareAndSwap(t, next) {
			return g.Allowed(next - now), true
		}
	}
}

// Allowed returns the decision for an admitted request that left the TAT
// resetAfter ns ahead of now.
func (g GCRA) Allowed(resetAfter int64) Decision {
	rem := (g.tolerance - resetAfter) / g.interval
	return Decision{Allowed: true, Limit: g.burst, Remaining: int(max(rem, 0)), ResetAfter: time.Duration(resetAfter)}
}

// Denied returns the decision for a denied request: the TAT is resetAfter ns
// ahead of now and a request is admitted again in retryAfter ns.
func (g GCRA) Denied(resetAfter, retryAfter int64) Decision {
	return Decision{Limit: g.burst, ResetAfter: time.Duration(resetAfter), RetryAfter: time.Duration(max(retryAfter, 1))}
}

// Limiter is one GCRA bucket, e.g. a per-route limit. It is safe for
// concurrent use; Allow is lock-free and allocates nothing.
type Limiter struct {
	tat atomic.Int64
	_   [cacheLine - 8]byte
	g   GCRA
}

// cacheLine pads hot atomics against false sharing.
const cacheLine = 64

// New returns a Limiter for l, or the validation error.
func New(l Limit) (*Limiter, error) {
	g, err := NewGCRA(l)
	if err != nil {
		return nil, err
	}
	return &Limiter{g: g}, nil
}

// Allow checks one request at now (Unix nanoseconds).
func (l *Limiter) Allow(now int64) Decision { return l.g.Allow(&l.tat, now) }
