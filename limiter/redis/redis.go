// Package redis enforces limiter.Limit across gateway nodes with Redis,
// through a caller-owned github.com/redis/rueidis client (one client serves
// every limiter; Close of a limiter never closes it). Both limiters return
// limiter.Decision, so the HTTP layer treats them like the local ones.
//
// # Exact
//
// Exact runs GCRA in Redis: one Lua script per check (EVALSHA, falling back
// to EVAL after a script cache flush; rueidis pipelines concurrent calls on
// one connection). The script reads the clock with redis.call('TIME'), so
// all nodes share Redis's clock and node clock skew does not matter; the
// now passed to Allow is used only when Redis fails. A script that reads
// TIME and then writes needs effects replication, the only mode since Redis
// 7 (and the default since 5). Every check waits one round trip, bounded by
// Options.Timeout (default 100ms).
//
// # Hybrid
//
// Hybrid never waits on Redis. Redis holds the global GCRA state of each key
// (a hash {t: TAT in µs of Redis time, c: total admissions}); each node keeps
// a local copy and reconciles in the background every SyncPeriod (default
// 50ms), in one pipelined round trip for all keys checked since the last
// sync:
//
//  1. A check runs GCRA locally on the node's copy of the key's TAT, but an
//     admission moves it by interval*w, where w estimates how many nodes
//     share the key's traffic (see below), so between syncs each node spends
//     about 1/w of what the cluster may spend.
//  2. At sync the node sends the number d of admissions since the last sync.
//     The script applies them unconditionally, TAT = max(TAT, now) + d*interval,
//     and returns TAT - now and the total c. The node sets its copy to that
//     (in its own clock: only the offset crosses the wire, so skew does not
//     matter), plus what it admitted while the reply was in flight.
//  3. w = Δc/d: admissions by the whole cluster per own admission over the
//     last sync period, smoothed (EWMA ½), clamped to [1, MaxNodes]. A new key
//     starts at the latest estimate of any key.
//
// Over-admission bound. Every admission reaches Redis within one sync, and
// Redis charges all of them, so overshoot is paid back: a TAT pushed beyond
// now+burst*interval makes every node deny until it is back. Hence over any
// interval T, with N nodes, sync period S and rate R (limit R per second,
// burst B):
//
//	admitted ≤ B + R·T + (N−1)·(B + R·(S + RTT))
//
// the last term being what the other nodes can admit on stale state within
// one sync period, in the worst case where every node believes it is alone
// (w = 1: a key's first period, or traffic moving between nodes). With
// steady traffic w is right and the error is a fraction of R·S. Measured
// in TestHybridAccuracy (3 nodes, 1000/s, burst 50, S=50ms, 6000/s offered
// for 5s): hybrid admits 0.987-0.990 × (B + R·T), exact 0.999 ×, three
// unshared local limiters 2.998 ×; 0.010 Redis round trips per check.
// Under-admission is bounded the same way: a node whose w is too high
// (traffic just moved to it) under-spends for about one sync period.
//
// # Failure
//
// When Redis is slow or down (a call times out or fails), Exact and Hybrid
// act by Options.FailClosed: fail-open (default) admits, fail-closed
// denies. Exact decides per check; Hybrid marks itself degraded when a sync
// fails and clears it at the next good sync. Fail-open Hybrid keeps limiting
// from local state, at about 1/w of the limit per node, i.e. about the
// global limit if w was right; admissions made while degraded are not
// replayed into Redis on recovery (that would deny for as long as the
// outage lasted). Every failure is counted (Stats) and reported through
// Options.OnError at most once per second. rueidis reconnects by itself;
// the sync loop keeps running, so recovery needs nothing from the caller.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"fastgate/limiter"
)

// Options tunes Exact and Hybrid. The zero value is usable.
type Options struct {
	// Prefix starts every Redis key: Prefix + name + ":" + key. Zero means "fastgate:rl:".
	Prefix string
	// Timeout bounds each Exact check's Redis call (and Hybrid's PING while
	// degraded). Zero means 100ms.
	Timeout time.Duration
	// SyncTimeout bounds each Hybrid sync round trip; no request waits on it,
	// but a sync that times out is dropped (see "Failure"). Zero means 500ms.
	SyncTimeout time.Duration
	// FailClosed denies requests while Redis fails; false (default) admits them.
	FailClosed bool
	// OnError receives Redis errors, at most one per second, and Hybrid's
	// notice ErrRecovered when Redis is back; nil means slog.Default()
	// (Warn for errors, Info for the recovery).
	OnError func(err error)

	// SyncPeriod is Hybrid's reconciliation period. Zero means 50ms.
	SyncPeriod time.Duration
	// MaxKeys caps the keys Hybrid holds locally. When full, the longest idle
	// of 8 sampled keys is evicted (Redis keeps its state, so little is
	// lost). Zero means 1,000,000.
	MaxKeys int
	// MaxNodes caps Hybrid's estimate of the nodes sharing a key. Zero means 64.
	MaxNodes int
}

func (o *Options) setDefaults() {
	if o.Prefix == "" {
		o.Prefix = "fastgate:rl:"
	}
	if o.Timeout <= 0 {
		o.Timeout = 100 * time.Millisecond
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = 500 * time.Millisecond
	}
	if o.SyncPeriod <= 0 {
		o.SyncPeriod = 50 * time.Millisecond
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = limiter.DefaultMaxKeys
	}
	if o.MaxNodes <= 0 {
		o.MaxNodes = 64
	}
}

// Stats are monotonic counters for metrics. RoundTrips/Checks is the Redis
// cost per request (1 for Exact; ≪ 0.05 for Hybrid at high rates).
type Stats struct {
	Checks     uint64 // Allow calls
	RoundTrips uint64 // Redis round trips (a pipelined sync counts once)
	Errors     uint64 // failed Redis round trips
	FailOpen   uint64 // checks admitted because Redis failed (Hybrid: checked while degraded)
	FailClosed uint64 // checks denied because Redis failed
}

// counters are shared by Exact and Hybrid.
type counters struct {
	checks, roundTrips, errors, failOpen, failClosed atomic.Uint64
	lastLog                                          atomic.Int64
	onError                                          func(error)
	recovered                                        func()
}

func (c *counters) stats() Stats {
	return Stats{Checks: c.checks.Load(), RoundTrips: c.roundTrips.Load(), Errors: c.errors.Load(),
		FailOpen: c.failOpen.Load(), FailClosed: c.failClosed.Load()}
}

// fail counts err and reports it at most once per second.
func (c *counters) fail(err error) {
	c.errors.Add(1)
	now := time.Now().UnixNano()
	last := c.lastLog.Load()
	if now-last >= int64(time.Second) && c.lastLog.CompareAndSwap(last, now) {
		c.onError(err)
	}
}

func newCounters(o Options, name string) *counters {
	c := &counters{onError: o.OnError}
	if c.onError == nil {
		c.onError = func(err error) { slog.Default().Warn("rate limit: redis failed", "limiter", name, "err", err) }
		c.recovered = func() { slog.Default().Info("rate limit: redis is back", "limiter", name) }
	} else {
		c.recovered = func() { o.OnError(ErrRecovered) }
	}
	return c
}

func checkArgs(client rueidis.Client, name string, l limiter.Limit) (limiter.GCRA, error) {
	if client == nil {
		return limiter.GCRA{}, fmt.Errorf("limiter/redis: limiter %q: nil rueidis client", name)
	}
	g, err := limiter.NewGCRA(l)
	if err != nil {
		return g, fmt.Errorf("limiter/redis: limiter %q: %w", name, err)
	}
	if g.Interval() < int64(time.Microsecond) {
		return g, fmt.Errorf("limiter/redis: limiter %q: rate %d per %s is above one request per microsecond, the resolution of the Redis scripts; raise per or lower rate", name, l.Rate, l.Per)
	}
	return g, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// failRetryAfter is the Retry-After of a fail-closed denial.
const failRetryAfter = time.Second

func timeUS(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// ErrRecovered is passed to Options.OnError when a degraded Hybrid syncs
// with Redis again.
var ErrRecovered = errors.New("limiter/redis: redis is back; hybrid limits are cluster-wide again")
