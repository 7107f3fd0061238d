package lb

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of SetOptions fields left zero.
const (
	DefaultPanicThreshold     = 50
	DefaultEjectionTime       = 30 * time.Second
	DefaultMaxEjectionPercent = 10
	DefaultEWMADecay          = 10 * time.Second
	// MaxTargets bounds a Set: target indexes are stored as uint16 in hash tables.
	MaxTargets = 1<<16 - 1
)

// SetOptions is the upstream-level health configuration of a Set. The zero
// value is usable: active thresholds of 1, no passive ejection, panic mode
// below 50% available.
type SetOptions struct {
	// PanicThreshold is the percentage of available targets below which the
	// set is in panic mode and balances over all targets ignoring health
	// (Envoy's healthy_panic_threshold). 0 means DefaultPanicThreshold (50);
	// a negative value disables panic mode.
	PanicThreshold int

	// HealthyThreshold is the number of consecutive passed active checks that
	// mark a down target healthy again. 0 means 1.
	HealthyThreshold int
	// UnhealthyThreshold is the number of consecutive failed active checks
	// that mark a target down. 0 means 1.
	UnhealthyThreshold int

	// ConsecutiveFailures is the number of consecutive failed requests that
	// eject a target (passive outlier detection). 0 disables ejection.
	ConsecutiveFailures int
	// EjectionTime is the base ejection duration: the k-th ejection in a row
	// lasts k × EjectionTime, capped at MaxEjectionTime. 0 means 30s.
	EjectionTime time.Duration
	// MaxEjectionTime caps one ejection. 0 means 10 × EjectionTime.
	MaxEjectionTime time.Duration
	// EjectionDecay is how long a target must stay un-ejected for its
	// ejection multiplier to drop by one (Envoy decrements it every interval
	// a host stays healthy). 0 means EjectionTime.
	EjectionDecay time.Duration
	// MaxEjectionPercent is the largest percentage of the set's targets that
	// may be ejected at once (Envoy's rule: eject while (ejected+1)*100 ≤
	// MaxEjectionPercent × targets). Ejections refused by it are counted in
	// Set.EjectionsOverflow. 0 means 10; 100 means no limit.
	MaxEjectionPercent int

	// EWMADecay is the time constant tau of the peak-EWMA latency used by
	// p2c_ewma. 0 means 10s.
	EWMADecay time.Duration
}

func (o *SetOptions) setDefaults() {
	if o.PanicThreshold == 0 {
		o.PanicThreshold = DefaultPanicThreshold
	}
	o.HealthyThreshold = max(o.HealthyThreshold, 1)
	o.UnhealthyThreshold = max(o.UnhealthyThreshold, 1)
	if o.EjectionTime <= 0 {
		o.EjectionTime = DefaultEjectionTime
	}
	if o.MaxEjectionTime <= 0 {
		o.MaxEjectionTime = 10 * o.EjectionTime
	}
	if o.EjectionDecay <= 0 {
		o.EjectionDecay = o.EjectionTime
	}
	if o.MaxEjectionPercent <= 0 {
		o.MaxEjectionPercent = DefaultMaxEjectionPercent
	}
	if o.EWMADecay <= 0 {
		o.EWMADecay = DefaultEWMADecay
	}
}

// defaultSetOptions apply to a Target that is in no Set yet.
var defaultSetOptions = func() *SetOptions {
	o := &SetOptions{}
	o.setDefaults()
	return o
}()

// Set is the immutable target list of one compiled config snapshot of an
// upstream, with the upstream's health view: which targets are available,
// and whether the set is in panic mode. Balancers are built over a Set.
//
// A Set is safe for concurrent use. Picks read its view with one atomic
// load; the view is rebuilt (under a mutex, off the pick path) when a
// target's availability flips and on Tick.
type Set struct {
	targets []*Target
	weights []int32 // copied from the targets when the set was built
	opts    SetOptions

	// shared is the upstream-level state that outlives Sets: handed from
	// the previous Set of the upstream to the next.
	shared *upstreamState

	view     atomic.Pointer[view]
	ewmaMean atomic.Uint64 // float64 bits: cost of an untried target for p2c_ewma
	mu       sync.Mutex    // serialises view rebuilds
}

// upstreamState is shared by all the Sets of one upstream.
type upstreamState struct {
	inflight atomic.Int64 // sum of Begin-End over the upstream's targets
	_        [cacheLine - 8]byte

	ejectMu  sync.Mutex // serialises ejection decisions (max_ejection_percent)
	overflow atomic.Uint64
}

// view is what picks read: the indexes picked over and panic mode.
type view struct {
	pick      []int32 // available targets; all targets in panic mode
	weight    int64   // sum of the weights of pick
	mod       uint64  // fastmod constant for len(pick)
	available int     // available targets (also in panic mode)
	panic     bool
}

// NewSet returns the Set of targets for a new config snapshot of one
// upstream. prev is the Set it replaces (nil for a new upstream): the
// upstream's total in-flight count and ejection bookkeeping carry over from
// it, so pass it on every reload. With prev nil the total is seeded from the
// targets' in-flight counts; a request that begins or ends during that
// seeding may leave the total off by one, so prev nil is for new upstreams
// only. NewSet points every target at the new Set (for its options and
// view); a Target must not be in the Sets of two upstreams. The targets slice is kept and must not be
// modified. An empty set is valid: its balancers return -1.
func NewSet(targets []*Target, prev *Set, opts SetOptions) (*Set, error) {
	if len(targets) > MaxTargets {
		return nil, fmt.Errorf("lb: %d targets in one upstream; at most %d are supported", len(targets), MaxTargets)
	}
	seen := make(map[*Target]struct{}, len(targets))
	for _, t := range targets {
		if _, ok := seen[t]; ok {
			return nil, fmt.Errorf("lb: target %q appears twice in one set; pass each *Target once", t.addr)
		}
		seen[t] = struct{}{}
	}
	opts.setDefaults()
	s := &Set{targets: targets, weights: make([]int32, len(targets)), opts: opts}
	for i, t := range targets {
		s.weights[i] = t.weight.Load()
	}
	if prev != nil {
		s.shared = prev.shared
	} else {
		s.shared = &upstreamState{}
	}
	for _, t := range targets {
		t.set.Store(s)
	}
	if prev == nil {
		// A new upstream: seed the total from the targets (see the doc).
		var sum int64
		for _, t := range targets {
			sum += t.inflight.Load()
		}
		s.shared.inflight.Store(sum)
	}
	s.Refresh()
	return s, nil
}

// Targets returns the set's targets; the index of a target in it is what
// Pick returns. The slice must not be modified.
func (s *Set) Targets() []*Target { return s.targets }

// Len returns the number of targets.
func (s *Set) Len() int { return len(s.targets) }

// Panic reports whether the set is in panic mode: fewer than
// PanicThreshold percent of its targets are available, so picks ignore
// health. For a metric or a log line on change.
func (s *Set) Panic() bool { return s.view.Load().panic }

// Available returns the number of available targets as of the last view
// rebuild.
func (s *Set) Available() int { return s.view.Load().available }

// Ejected returns the number of the set's targets that are ejected now.
func (s *Set) Ejected() int {
	n := 0
	for _, t := range s.targets {
		if t.state.Load()&stateEjected != 0 {
			n++
		}
	}
	return n
}

// EjectionsOverflow returns how many ejections max_ejection_percent has
// refused in this upstream (a counter; survives reloads with prev).
func (s *Set) EjectionsOverflow() uint64 { return s.shared.overflow.Load() }

// InFlight returns the upstream's total in-flight requests.
func (s *Set) InFlight() int64 { return s.shared.inflight.Load() }

// Options returns the set's options with defaults applied.
func (s *Set) Options() SetOptions { return s.opts }

// Refresh recomputes the set-level view (available targets, panic mode)
// from the targets. Target state changes call it; so does Tick. It
// allocates only when the view changed.
func (s *Set) Refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.view.Load()
	available := 0
	for _, t := range s.targets {
		if t.state.Load() == 0 {
			available++
		}
	}
	n := len(s.targets)
	panic := s.opts.PanicThreshold > 0 && available*100 < s.opts.PanicThreshold*n
	if old != nil && old.panic == panic && old.available == available && s.sameView(old, panic) {
		return
	}
	v := &view{available: available, panic: panic, pick: make([]int32, 0, n)}
	for i, t := range s.targets {
		if panic || t.state.Load() == 0 {
			v.pick = append(v.pick, int32(i))
			v.weight += int64(s.weights[i])
		}
	}
	v.mod = fastmodM(uint32(max(len(v.pick), 1)))
	s.view.Store(v)
}

// sameView reports whether old.pick still lists exactly the pickable targets.
func (s *Set) sameView(old *view, panic bool) bool {
	j := 0
	for i, t := range s.targets {
		if !panic && t.state.Load() != 0 {
			continue
		}
		if j >= len(old.pick) || old.pick[j] != int32(i) {
			return false
		}
		j++
	}
	return j == len(old.pick)
}

// Tick advances the set's time-driven state to now (Unix ns): it un-ejects
// targets whose ejection has expired, decays ejection multipliers of
// targets that stayed un-ejected for EjectionDecay, decays the latency EWMA
// of idle targets, and refreshes the view. Core calls it from one goroutine
// per upstream every 100ms..1s; ejections last that much longer at most.
func (s *Set) Tick(now int64) {
	decay := int64(s.opts.EjectionDecay)
	var sum float64
	tried := 0
	for _, t := range s.targets {
		t.tick(now, decay)
		if e := t.decayEWMA(now, s.opts.EWMADecay); e > 0 {
			sum += e
			tried++
		}
	}
	mean := 0.0
	if tried > 0 {
		mean = sum / float64(tried)
	}
	s.ewmaMean.Store(float64bits(mean))
	s.Refresh()
}

// usable reports whether target i may be picked: not in skip, and available
// unless in panic mode. One atomic load.
func (s *Set) usable(i int, skip uint64, panic bool) bool {
	return skip&(1<<uint(i)) == 0 && (panic || s.targets[i].state.Load() == 0)
}

// scan is the slow path of every policy: from index start of v.pick, the
// least loaded usable target by (in-flight+1)/weight, or -1.
func (s *Set) scan(v *view, start int, skip uint64) int {
	best, n := -1, len(v.pick)
	var bestIn, bestW int64
	for k := 0; k < n; k++ {
		j := start + k
		if j >= n {
			j -= n
		}
		i := int(v.pick[j])
		if !s.usable(i, skip, v.panic) {
			continue
		}
		in, w := s.targets[i].inflight.Load()+1, int64(s.weights[i])
		if best < 0 || in*bestW < bestIn*w {
			best, bestIn, bestW = i, in, w
		}
	}
	return best
}

// fastmodM returns the constant of Lemire's fastmod for divisor d.
func fastmodM(d uint32) uint64 { return ^uint64(0)/uint64(d) + 1 }

// fastmod returns a % d given m = fastmodM(d), without a division.
func fastmod(a uint32, m uint64, d uint32) uint32 {
	hi, _ := bits.Mul64(m*uint64(a), uint64(d))
	return uint32(hi)
}

// fastrange maps a uniform 32-bit r to [0, n) (Lemire), without a division.
func fastrange(r uint32, n int) int { return int((uint64(r) * uint64(n)) >> 32) }
