package loadtest

import (
	"math"
	"time"
)

// schedule gives the intended start offsets of an open-model run: arrival i
// is due when the integral of the rate from 0 reaches i. The rate is
// piecewise linear (k6's ramping-arrival-rate); constant-arrival-rate is
// one flat stage. Offsets are exact, so a slow generator falls behind its
// schedule (and says so in the latencies) instead of silently slowing down.
//
// A schedule is not safe for concurrent use; arrivals are asked in order.
type schedule struct {
	stages []rampStage
	k      int // current stage
}

// rampStage is one linear piece of the rate.
type rampStage struct {
	start float64 // seconds from the start
	dur   float64 // seconds
	from  float64 // rate at start, per second
	to    float64 // rate at the end
	cum   float64 // arrivals due before start
}

// newSchedule builds the schedule of sc.
func newSchedule(sc *Scenario) *schedule {
	s := &schedule{}
	if sc.Executor == ConstantArrivalRate {
		s.add(sc.Duration.D(), sc.Rate, sc.Rate)
		return s
	}
	from := sc.StartRate
	for _, st := range sc.Stages {
		s.add(st.Duration.D(), from, st.Target)
		from = st.Target
	}
	return s
}

// add appends a stage of d moving from rate a to rate b.
func (s *schedule) add(d time.Duration, a, b float64) {
	st := rampStage{dur: d.Seconds(), from: a, to: b}
	if n := len(s.stages); n > 0 {
		p := &s.stages[n-1]
		st.start = p.start + p.dur
		st.cum = p.cum + (p.from+p.to)/2*p.dur
	}
	s.stages = append(s.stages, st)
}

// total returns the number of arrivals of the whole schedule.
func (s *schedule) total() int {
	if len(s.stages) == 0 {
		return 0
	}
	p := &s.stages[len(s.stages)-1]
	return int(math.Ceil(p.cum + (p.from+p.to)/2*p.dur - 1e-9))
}

// at returns the offset of arrival i (0-based, non-decreasing across
// calls), or false once the schedule has no arrival i.
func (s *schedule) at(i int) (time.Duration, bool) {
	x := float64(i)
	for ; s.k < len(s.stages); s.k++ {
		st := &s.stages[s.k]
		n := (st.from + st.to) / 2 * st.dur
		if x-st.cum >= n-1e-9 {
			continue
		}
		x -= st.cum
		// Solve from*t + slope*t²/2 = x for t in [0, dur]; the form
		// 2x/(from+sqrt(from²+2*slope*x)) is stable for from = 0 and for
		// slope near 0.
		slope := (st.to - st.from) / st.dur
		disc := math.Max(st.from*st.from+2*slope*x, 0)
		den := st.from + math.Sqrt(disc)
		t := 0.0
		if den > 0 {
			t = 2 * x / den
		}
		return time.Duration((st.start + math.Min(t, st.dur)) * float64(time.Second)), true
	}
	return 0, false
}
