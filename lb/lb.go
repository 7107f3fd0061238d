// Package lb holds the load-balancing policies, the per-target state they
// read, and the upstream-level guards around them (circuit breaker, retry
// budget). It is a leaf: no fasthttp, no fastgate package. Core owns the
// connection pools and maps a picked index to its own target.
//
// The pieces, and who calls what:
//
//   - Target: one endpoint ("host:port"). Core keeps one per address per
//     upstream across config reloads, so in-flight counts, health, ejection
//     and latency EWMA survive reloads.
//   - Set: the immutable []*Target of one compiled config snapshot plus the
//     upstream-level health view (available targets, panic mode). Built with
//     NewSet on every reload, passing the upstream's previous Set.
//   - a balancer (RoundRobin, Weighted, Random, LeastConn, P2C, P2CEWMA,
//     Maglev, Ring; or New by policy name) built over a Set. Every balancer
//     has Pick(key, skip uint64) int: lock-free, 0 allocations.
//   - Set.Tick(now) from one goroutine per upstream every 100ms..1s:
//     un-ejects targets whose ejection expired, decays ejection counts and
//     idle latency EWMAs.
//   - Breaker and Budget: per-upstream concurrency and retry limits.
//
// Time is always passed in as Unix nanoseconds (now int64), so every state
// machine here is tested on virtual time.
package lb

import (
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
)

// cacheLine pads hot atomics so that targets picked by different CPUs don't
// share a cache line.
const cacheLine = 64

// Availability bits of Target.state. A target is available when no bit is set.
const (
	stateDown    = 1 << iota // failed its active health checks
	stateEjected             // ejected by passive outlier detection
)

// Target is the balancing state of one upstream endpoint: address, weight,
// in-flight count, health, ejection and latency EWMA. It is safe for
// concurrent use; every field is an atomic.
//
// Core keeps one Target per address per upstream across config reloads.
// A Target belongs to one upstream: it may sit in successive Sets of that
// upstream, not in Sets of two upstreams at once.
type Target struct {
	// Written on every request, read together by p2c_ewma.
	inflight  atomic.Int64
	ewma      atomic.Uint64 // float64 bits, nanoseconds; 0 means no sample yet
	ewmaStamp atomic.Int64  // now of the last EWMA update
	_         [cacheLine - 24]byte

	// Read on every pick, written on health transitions and reloads only.
	state  atomic.Uint32
	weight atomic.Int32
	set    atomic.Pointer[Set] // the newest Set holding this target
	_      [cacheLine - 16]byte

	// Health bookkeeping, written on checks and failures.
	checkOK      atomic.Int32 // consecutive passed active checks
	checkFail    atomic.Int32 // consecutive failed active checks
	failures     atomic.Int32 // consecutive failed requests (passive)
	timesEjected atomic.Int32 // ejection multiplier, decays while healthy
	ejectedUntil atomic.Int64
	ejectStamp   atomic.Int64 // last ejection, un-ejection or decay step
	ejections    atomic.Uint64

	addr string
}

// NewTarget returns the state for the endpoint at addr ("host:port") with the
// given weight (values < 1 mean 1). A new target is healthy and not ejected.
func NewTarget(addr string, weight int) *Target {
	t := &Target{addr: addr}
	t.SetWeight(weight)
	return t
}

// Addr returns the target's "host:port".
func (t *Target) Addr() string { return t.addr }

// Weight returns the target's relative weight, at least 1.
func (t *Target) Weight() int { return int(t.weight.Load()) }

// SetWeight changes the weight on reload (values < 1 mean 1, values above
// MaxWeight mean MaxWeight). Sets copy weights when built, so the change
// takes effect with the next NewSet.
func (t *Target) SetWeight(weight int) {
	t.weight.Store(int32(min(max(weight, 1), MaxWeight)))
}

// MaxWeight is the largest target weight.
const MaxWeight = 1 << 16

// Begin records the start of a request to t. Every Begin is paired with one
// End. It also counts the request in its upstream's total in-flight, which
// bounded-load hashing reads.
func (t *Target) Begin() {
	t.inflight.Add(1)
	if s := t.set.Load(); s != nil {
		s.shared.inflight.Add(1)
	}
}

// End records the end of a request started with Begin.
func (t *Target) End() {
	t.inflight.Add(-1)
	if s := t.set.Load(); s != nil {
		s.shared.inflight.Add(-1)
	}
}

// InFlight returns the number of requests to t that have begun and not ended.
func (t *Target) InFlight() int64 { return t.inflight.Load() }

// Available reports whether t may be picked outside panic mode: it passes
// its active health checks and is not ejected.
func (t *Target) Available() bool { return t.state.Load() == 0 }

// Healthy reports whether t passes its active health checks.
func (t *Target) Healthy() bool { return t.state.Load()&stateDown == 0 }

// Ejected reports whether passive outlier detection has ejected t.
func (t *Target) Ejected() bool { return t.state.Load()&stateEjected != 0 }

// EjectedUntil returns when the current ejection ends (Unix ns); meaningful
// while Ejected.
func (t *Target) EjectedUntil() int64 { return t.ejectedUntil.Load() }

// TimesEjected returns the ejection multiplier: ejections not yet decayed.
func (t *Target) TimesEjected() int { return int(t.timesEjected.Load()) }

// Ejections returns how many times t was ever ejected (a counter for metrics).
func (t *Target) Ejections() uint64 { return t.ejections.Load() }

// ConsecutiveFailures returns the failed requests since the last success,
// ejection attempt or reload of the counter.
func (t *Target) ConsecutiveFailures() int { return int(t.failures.Load()) }

// EWMA returns the peak-EWMA latency; 0 until the first Observe.
func (t *Target) EWMA() time.Duration { return time.Duration(t.ewmaLoad()) }

// HashBytes returns the balancing key of b for hashing policies (xxhash64).
func HashBytes(b []byte) uint64 { return xxhash.Sum64(b) }

// HashString returns the balancing key of s for hashing policies (xxhash64).
func HashString(s string) uint64 { return xxhash.Sum64String(s) }
