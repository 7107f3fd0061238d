package ratelimit

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/limiter"
	rlredis "fastgate/limiter/redis"
)

// Filter enforces a route's rate limits and concurrency cap. It is safe
// for concurrent use and allocates nothing per request for local limits
// and for global hybrid limits on a key seen before.
type Filter struct {
	b      *Builder
	route  string
	limits []limit
	// policy is the RateLimit-Policy value of the limits with IETF headers.
	policy     []byte
	hasHeaders bool
	conc       *concurrency
	needState  bool

	rejected, throttled *metrics.Counter
	closeOnce           sync.Once
	closed              atomic.Bool
}

var (
	_ core.AfterFilter = (*Filter)(nil)
	_ core.DoneFilter  = (*Filter)(nil)
	_ io.Closer        = (*Filter)(nil)
)

// Filter checks the limits in order; the first that denies answers 429
// (later limits are not charged). Then it takes a concurrency slot.
func (f *Filter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	now := ctx.Time().UnixNano()
	var scratch [keyScratchSize]byte
	var best *limit
	var bestD limiter.Decision
	for i := range f.limits {
		l := f.limits[i].forConsumer(r)
		key := l.key.append(scratch[:0], ctx, r)
		d := l.allow(now, key)
		if !d.Allowed {
			f.deny(ctx, r, l, d)
			return false
		}
		if (l.ietf || l.legacy) && (best == nil || d.Remaining < bestD.Remaining) {
			best, bestD = l, d
		}
	}
	var hash uint64
	if c := f.conc; c != nil {
		var ok bool
		if hash, ok = c.acquire(ctx, r, scratch[:0]); !ok {
			f.throttle(ctx, r)
			return false
		}
	}
	if f.needState {
		st := acquireState()
		st.limit, st.d, st.hash = best, bestD, hash
		r.SetState(st)
	}
	return true
}

// After sets the RateLimit headers of the most restrictive limit on the
// response.
func (f *Filter) After(ctx *fasthttp.RequestCtx, r *core.Request) {
	if st, _ := r.State().(*state); st != nil && st.limit != nil {
		f.writeHeaders(&ctx.Response.Header, st.limit, st.d, false)
	}
}

// Done releases the concurrency slot once the whole response, a streamed
// body included, has been written: a slot is held for a whole download.
func (f *Filter) Done(ctx *fasthttp.RequestCtx, r *core.Request) {
	st, _ := r.State().(*state)
	if f.conc != nil {
		f.conc.release(st)
	}
	if st != nil {
		releaseState(st)
	}
}

// Close stops the route's global limiters. Core calls it once no snapshot
// uses the Filter; it is idempotent.
func (f *Filter) Close() error {
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		f.closeLimiters()
		b := f.b
		b.mu.Lock()
		defer b.mu.Unlock()
		f.retireLocked()
	})
	return nil
}

// closeLimiters stops the global limiters' sync goroutines.
func (f *Filter) closeLimiters() {
	for i := range f.limits {
		if g := f.limits[i].global; g != nil {
			g.Close()
		}
	}
}

// retireLocked moves the global limiters' counts into the Builder's
// retired totals. Called with b.mu held, after closeLimiters.
func (f *Filter) retireLocked() {
	for i := range f.limits {
		if g := f.limits[i].global; g != nil {
			addStats(&f.b.retired, g.Stats())
			delete(f.b.globals, g)
		}
	}
}

// limit is one compiled rate limit.
type limit struct {
	name   string
	key    key
	quota  int
	window int64 // seconds: w of RateLimit-Policy
	ietf   bool
	legacy bool

	// exactly one of these
	single *limiter.Limiter
	keyed  *limiter.Keyed
	hybrid *rlredis.Hybrid
	exact  *rlredis.Exact
	global globalLimiter // hybrid or exact, for Stats and Close

	// overrides, for a limit keyed by consumer alone, are the consumers'
	// own limits (consumers[].rate_limit), by core.Consumer.Index; nil
	// entries take this limit.
	overrides []*limit
}

// forConsumer returns the limit that applies to the request's consumer:
// its override, or l.
func (l *limit) forConsumer(r *core.Request) *limit {
	if l.overrides == nil {
		return l
	}
	if c := r.Consumer(); c != nil && c.Index >= 0 && c.Index < len(l.overrides) && l.overrides[c.Index] != nil {
		return l.overrides[c.Index]
	}
	return l
}

// allow checks one request. Concrete calls, no interface: key stays on the
// caller's stack.
func (l *limit) allow(now int64, key []byte) limiter.Decision {
	switch {
	case l.keyed != nil:
		return l.keyed.AllowHash(now, xxhash.Sum64(key))
	case l.single != nil:
		return l.single.Allow(now)
	case l.hybrid != nil:
		return l.hybrid.Allow(now, key)
	default:
		return l.exact.Allow(now, key)
	}
}

func ceilSeconds(ns int64) int64 {
	const s = int64(1e9)
	return max(1, (ns+s-1)/s)
}
