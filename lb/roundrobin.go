package lb

import (
	"errors"
	"sync/atomic"
)

// ErrNoTargets is returned when a balancer is built over an empty target set.
var ErrNoTargets = errors.New("lb: no targets; an upstream needs at least one target")

// RoundRobin picks targets in turn. It is safe for concurrent use: one atomic
// add per pick, no lock.
type RoundRobin struct {
	next atomic.Uint64
	_    [cacheLine - 8]byte

	targets []*Target
}

// NewRoundRobin returns a round-robin balancer over targets; the slice is
// kept and must not change afterwards.
func NewRoundRobin(targets []*Target) (*RoundRobin, error) {
	if len(targets) == 0 {
		return nil, ErrNoTargets
	}
	return &RoundRobin{targets: targets}, nil
}

// Pick returns the index in the target slice of the next target. The hash is
// ignored; it is the key of hashing policies.
func (rr *RoundRobin) Pick(hash uint64) int {
	n := rr.next.Add(1) - 1
	return int(n % uint64(len(rr.targets)))
}

// Targets returns the balancer's targets. The slice must not be modified.
func (rr *RoundRobin) Targets() []*Target { return rr.targets }
