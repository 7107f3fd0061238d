// Package lb holds the load-balancing policies and the per-target state they
// read. It is a leaf: no fasthttp, no core. The gateway core owns the
// connection pools and maps a picked index to its own target.
//
// A Balancer picks over a fixed, immutable slice of targets built off the hot
// path; a new target set means a new Balancer, published by the caller with
// an atomic pointer swap. Picks are lock-free and allocate nothing.
package lb

import (
	"sync/atomic"
)

// cacheLine pads hot atomics so that targets picked by different CPUs don't
// share a cache line.
const cacheLine = 64

// Target is the balancing state of one upstream endpoint: its address,
// weight and live in-flight count. It is safe for concurrent use. Core keeps
// a Target per address across config reloads so counts survive.
type Target struct {
	inflight atomic.Int64
	_        [cacheLine - 8]byte

	addr   string
	weight int
}

// NewTarget returns the state for the endpoint at addr ("host:port") with the
// given weight (values < 1 mean 1).
func NewTarget(addr string, weight int) *Target {
	if weight < 1 {
		weight = 1
	}
	return &Target{addr: addr, weight: weight}
}

// Addr returns the target's "host:port".
func (t *Target) Addr() string { return t.addr }

// Weight returns the target's relative weight, at least 1.
func (t *Target) Weight() int { return t.weight }

// Begin records the start of a request to t. Every Begin is paired with one End.
func (t *Target) Begin() { t.inflight.Add(1) }

// End records the end of a request started with Begin.
func (t *Target) End() { t.inflight.Add(-1) }

// InFlight returns the number of requests to t that have begun and not ended.
func (t *Target) InFlight() int64 { return t.inflight.Load() }
