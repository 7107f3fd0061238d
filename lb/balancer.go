package lb

import "fmt"

// Balancer is what every policy implements. Core may declare its own
// one-method interface instead; this one names the contract for New.
type Balancer interface {
	// Pick returns the index in the Set of the target for a request whose
	// balancing key is key (ignored by non-hashing policies), never one
	// whose bit is set in skip (bit i = target i, used by retries to go to
	// a different target; targets at index >= 64 can't be skipped), and
	// never an unavailable target unless the set is in panic mode. It
	// returns -1 when no target qualifies. Lock-free, 0 allocations.
	Pick(key, skip uint64) int
}

// Policy names accepted by New.
const (
	PolicyRoundRobin     = "round_robin"
	PolicyWeighted       = "weighted"
	PolicyRandom         = "random"
	PolicyLeastConn      = "least_conn"
	PolicyP2C            = "p2c"
	PolicyP2CEWMA        = "p2c_ewma"
	PolicyConsistentHash = "consistent_hash" // Maglev
	PolicyMaglev         = "maglev"
	PolicyRing           = "ring"
)

// Options tunes the hashing policies; other policies ignore it.
type Options struct {
	// BoundedLoad is the balance factor c of consistent hashing with bounded
	// loads (Mirrokni et al.; HAProxy hash-balance-factor as a ratio, e.g.
	// 1.25 for 125): a target takes a request only while its in-flight+1 ≤
	// max(1, floor(c × (upstream in-flight+1) × weight / available weight)).
	// 0 turns it off; other values must be ≥ 1.
	BoundedLoad float64
	// TableSize is the Maglev lookup table size; it must be a prime larger
	// than the number of targets. 0 means the next prime ≥ max(65537,
	// 100 × targets).
	TableSize int
}

func (o *Options) validate() error {
	if o.BoundedLoad != 0 && !(o.BoundedLoad >= 1) {
		return fmt.Errorf("lb: bounded_load %v must be 0 (off) or at least 1; 1.25 is a good start", o.BoundedLoad)
	}
	return nil
}

// New returns the balancer of the named policy over set. "consistent_hash"
// is Maglev. See the typed constructors for each policy.
func New(policy string, set *Set, opts Options) (Balancer, error) {
	switch policy {
	case PolicyRoundRobin:
		return NewRoundRobin(set), nil
	case PolicyWeighted:
		return NewWeighted(set)
	case PolicyRandom:
		return NewRandom(set), nil
	case PolicyLeastConn:
		return NewLeastConn(set), nil
	case PolicyP2C:
		return NewP2C(set), nil
	case PolicyP2CEWMA:
		return NewP2CEWMA(set), nil
	case PolicyConsistentHash, PolicyMaglev:
		return NewMaglev(set, opts)
	case PolicyRing:
		return NewRing(set, opts)
	}
	return nil, fmt.Errorf("lb: unknown balancer %q; use one of round_robin, weighted, random, least_conn, p2c, p2c_ewma, consistent_hash (maglev), ring", policy)
}

var (
	_ Balancer = (*RoundRobin)(nil)
	_ Balancer = (*Weighted)(nil)
	_ Balancer = (*Random)(nil)
	_ Balancer = (*LeastConn)(nil)
	_ Balancer = (*P2C)(nil)
	_ Balancer = (*P2CEWMA)(nil)
	_ Balancer = (*Maglev)(nil)
	_ Balancer = (*Ring)(nil)
)
