package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// A Timeline counts a run's events in fixed steps of the run's clock: the
// requests sent, the connections opened, the arrivals dropped, the
// responses and failures, and the largest send lag and latency of each
// step. A run's percentiles say how long the tail was; its timeline says
// when it formed and what came before it: the generator stalling (send
// lag), a stretch without responses, a burst of new connections.
//
// Requests are counted in the step they were sent in, responses and
// failures in the step they ended in; events past the last step count in
// it. It is safe for concurrent use.
type Timeline struct {
	step  time.Duration
	steps []timelineStep
}

type timelineStep struct {
	sent, opened, dropped, done, failed atomic.Int64
	maxLag, maxLatency                  atomic.Int64 // nanoseconds
}

// newTimeline returns a timeline of steps of step covering span.
func newTimeline(step, span time.Duration) *Timeline {
	return &Timeline{step: step, steps: make([]timelineStep, span/step+1)}
}

// at returns the step holding offset d from the start.
func (t *Timeline) at(d time.Duration) *timelineStep {
	i := int(max(d, 0) / t.step)
	return &t.steps[min(i, len(t.steps)-1)]
}

func raise(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// sent counts a request sent at offset at, lag after it was due.
func (t *Timeline) sent(at, lag time.Duration, opened bool) {
	if t == nil {
		return
	}
	s := t.at(at)
	s.sent.Add(1)
	if opened {
		s.opened.Add(1)
	}
	raise(&s.maxLag, int64(lag))
}

// dropped counts an arrival dropped at offset at.
func (t *Timeline) dropped(at time.Duration) {
	if t != nil {
		t.at(at).dropped.Add(1)
	}
}

// ended counts a request that ended at offset at after latency: with a
// response, or failed.
func (t *Timeline) ended(at, latency time.Duration, failed bool) {
	if t == nil {
		return
	}
	s := t.at(at)
	if failed {
		s.failed.Add(1)
	} else {
		s.done.Add(1)
	}
	raise(&s.maxLatency, int64(latency))
}

// WriteCSV writes one line per step up to the last with an event: its
// start (ms from the start of the run), the counts, the requests in
// flight at its end, and its largest send lag and latency in ms.
func (t *Timeline) WriteCSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "t_ms,sent,opened,dropped,responses,failed,in_flight,send_lag_max_ms,latency_max_ms")
	last := -1
	for i := range t.steps {
		s := &t.steps[i]
		if s.sent.Load()+s.dropped.Load()+s.done.Load()+s.failed.Load() > 0 {
			last = i
		}
	}
	var inFlight int64
	for i := 0; i <= last; i++ {
		s := &t.steps[i]
		inFlight += s.sent.Load() - s.done.Load() - s.failed.Load()
		fmt.Fprintf(bw, "%g,%d,%d,%d,%d,%d,%d,%.3f,%.3f\n", ms(time.Duration(i)*t.step),
			s.sent.Load(), s.opened.Load(), s.dropped.Load(), s.done.Load(), s.failed.Load(),
			inFlight, ms(time.Duration(s.maxLag.Load())), ms(time.Duration(s.maxLatency.Load())))
	}
	return bw.Flush()
}

// maxTimelineSteps bounds a timeline's steps (about 56 MB).
const maxTimelineSteps = 1_000_000

// CheckTimelineStep reports whether step suits a timeline of sc's run.
func CheckTimelineStep(step time.Duration, sc *Scenario) error {
	if step <= 0 {
		return fmt.Errorf("%s: want a positive duration, e.g. 10ms", step)
	}
	if n := (sc.LoadDuration() + sc.Timeout.D() + time.Second) / step; n > maxTimelineSteps {
		return fmt.Errorf("%s: %d steps for this run (load %s, timeout %s); want at most %d: use a longer step",
			step, n, sc.LoadDuration(), sc.Timeout.D(), maxTimelineSteps)
	}
	return nil
}
