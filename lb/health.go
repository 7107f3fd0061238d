package lb

import (
	"math"
	"time"
)

// options returns the health options of t's newest Set, or the defaults.
func (t *Target) options() *SetOptions {
	if s := t.set.Load(); s != nil {
		return &s.opts
	}
	return defaultSetOptions
}

// refresh rebuilds the view of t's newest Set after an availability flip.
func (t *Target) refresh() {
	if s := t.set.Load(); s != nil {
		s.Refresh()
	}
}

// ReportCheck records the outcome of one active health check. After
// UnhealthyThreshold failures in a row a healthy target goes down; after
// HealthyThreshold passes in a row a down target is healthy again. Checks
// of one target are expected from one goroutine; concurrent calls are safe.
func (t *Target) ReportCheck(ok bool) {
	o := t.options()
	if ok {
		t.checkFail.Store(0)
		n := t.checkOK.Add(1)
		if n >= int32(o.HealthyThreshold) && t.state.And(^uint32(stateDown))&stateDown != 0 {
			t.refresh()
		}
		return
	}
	t.checkOK.Store(0)
	n := t.checkFail.Add(1)
	if n >= int32(o.UnhealthyThreshold) && t.state.Or(stateDown)&stateDown == 0 {
		t.refresh()
	}
}

// ReportResult records the outcome of one request to t for passive outlier
// detection; now is the request's time (Unix ns). ConsecutiveFailures
// failures in a row eject t for k × EjectionTime (k: its ejection
// multiplier, capped at MaxEjectionTime) unless MaxEjectionPercent of the
// set is already ejected; either way the failure count restarts. A success
// costs one atomic load.
func (t *Target) ReportResult(now int64, failed bool) {
	if !failed {
		if t.failures.Load() != 0 {
			t.failures.Store(0)
		}
		return
	}
	n := t.failures.Add(1)
	s := t.set.Load()
	if s == nil || s.opts.ConsecutiveFailures <= 0 || n < int32(s.opts.ConsecutiveFailures) {
		return
	}
	if s.eject(t, now) {
		s.Refresh()
	}
}

// eject is the slow path of ReportResult: ejects t unless the set is at its
// max_ejection_percent. It reports whether t was ejected.
func (s *Set) eject(t *Target, now int64) bool {
	sh := s.shared
	sh.ejectMu.Lock()
	defer sh.ejectMu.Unlock()
	t.failures.Store(0)
	if t.state.Load()&stateEjected != 0 {
		return false
	}
	if (s.Ejected()+1)*100 > s.opts.MaxEjectionPercent*len(s.targets) {
		sh.overflow.Add(1)
		return false
	}
	k := int64(t.timesEjected.Add(1))
	d := min(s.opts.EjectionTime.Nanoseconds()*k, s.opts.MaxEjectionTime.Nanoseconds())
	t.ejectedUntil.Store(now + d)
	t.ejectStamp.Store(now)
	t.ejections.Add(1)
	t.state.Or(stateEjected)
	return true
}

// tick un-ejects t when its ejection expired, else decays its multiplier
// by one per decay interval spent un-ejected.
func (t *Target) tick(now, decay int64) {
	if t.state.Load()&stateEjected != 0 {
		if now >= t.ejectedUntil.Load() {
			t.ejectStamp.Store(now)
			t.state.And(^uint32(stateEjected))
		}
		return
	}
	if k := t.timesEjected.Load(); k > 0 && now-t.ejectStamp.Load() >= decay {
		t.timesEjected.CompareAndSwap(k, k-1)
		t.ejectStamp.Store(now)
	}
}

// Observe records the round-trip time of a response from t at now (Unix ns)
// into its peak-EWMA latency (Finagle/Linkerd): a sample above the current
// value replaces it; otherwise the value moves toward the sample with
// weight 1-exp(-Δt/tau), Δt being the time since the previous update.
func (t *Target) Observe(now int64, rtt time.Duration) {
	tau := t.options().EWMADecay
	prev := t.ewmaStamp.Swap(now)
	w := math.Exp(-float64(max(now-prev, 0)) / float64(tau))
	x := float64(max(rtt, 1))
	for {
		old := t.ewma.Load()
		e := float64frombits(old)
		if x < e {
			e = e*w + x*(1-w)
		} else {
			e = x // peak: a slower sample replaces the value (also the first one)
		}
		if t.ewma.CompareAndSwap(old, float64bits(e)) {
			return
		}
	}
}

// decayEWMA decays t's EWMA toward 0 for the time since its last update, as
// Finagle does on every read, so that a target that got slow and then
// received no traffic is tried again. It returns the new value.
func (t *Target) decayEWMA(now int64, tau time.Duration) float64 {
	old := t.ewma.Load()
	if old == 0 {
		return 0
	}
	prev := t.ewmaStamp.Swap(now)
	w := math.Exp(-float64(max(now-prev, 0)) / float64(tau))
	for {
		e := float64frombits(old) * w
		if t.ewma.CompareAndSwap(old, float64bits(e)) {
			return e
		}
		old = t.ewma.Load()
	}
}

func (t *Target) ewmaLoad() float64 { return float64frombits(t.ewma.Load()) }

func float64bits(f float64) uint64     { return math.Float64bits(f) }
func float64frombits(b uint64) float64 { return math.Float64frombits(b) }
