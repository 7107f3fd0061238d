package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"
)

// Summary is the outcome of one run, as printed and as written by -json.
// Latencies are milliseconds.
type Summary struct {
	Scenario    string         `json:"scenario"`
	Executor    string         `json:"executor"`
	Target      string         `json:"target"`
	Start       time.Time      `json:"start"`
	DurationS   float64        `json:"duration_s"` // load phase, wall clock, until the last response
	Requests    uint64         `json:"requests"`   // completed: responses and transport errors
	Failed      uint64         `json:"failed"`     // unexpected status or transport error
	Dropped     uint64         `json:"dropped"`    // iterations not started for want of a VU
	RPS         float64        `json:"rps"`        // requests / duration_s
	ErrorRate   float64        `json:"error_rate"` // failed / requests
	DroppedRate float64        `json:"dropped_rate"`
	BytesIn     uint64         `json:"bytes_in"` // response body bytes
	VUsMax      int            `json:"vus_max"`  // VUs (connections) started
	Latency     LatencySummary `json:"latency_ms"`
	// DispatchLag is how late the generator itself sent (open model only),
	// included in Latency; Go's timers fire up to ~1ms late on an idle VM.
	DispatchLag *LatencySummary   `json:"dispatch_lag_ms,omitempty"`
	Status      map[string]uint64 `json:"status"` // by status code
	Errors      map[string]uint64 `json:"errors"` // transport errors by kind
	Thresholds  []ThresholdResult `json:"thresholds"`
	Actions     []ActionResult    `json:"actions"`
	Pass        bool              `json:"pass"` // every threshold and action passed
	// Timeline is the run step by step, when Options.TimelineStep asked
	// for it (loadgen -timeline writes it as CSV).
	Timeline *Timeline `json:"-"`
}

// LatencySummary holds latency statistics in milliseconds.
type LatencySummary struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// ActionResult is the outcome of one scenario action.
type ActionResult struct {
	At    string  `json:"at"`
	Name  string  `json:"name"`
	LateS float64 `json:"late_s"` // how long after its offset it ran
	OK    bool    `json:"ok"`
	Error string  `json:"error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Summarize computes the summary of st over the elapsed load phase.
func Summarize(st *Stats, elapsed time.Duration) Summary {
	s := Summary{
		DurationS: elapsed.Seconds(),
		Requests:  st.Requests,
		Failed:    st.Failed,
		Dropped:   st.Dropped,
		BytesIn:   st.BytesIn,
		Status:    map[string]uint64{},
		Errors:    map[string]uint64{},
	}
	if elapsed > 0 {
		s.RPS = float64(st.Requests) / elapsed.Seconds()
	}
	if st.Requests > 0 {
		s.ErrorRate = float64(st.Failed) / float64(st.Requests)
	}
	if n := st.Requests + st.Dropped; n > 0 {
		s.DroppedRate = float64(st.Dropped) / float64(n)
	}
	s.Latency = latencySummary(&st.Latency)
	if st.Lag.Count() > 0 {
		lag := latencySummary(&st.Lag)
		s.DispatchLag = &lag
	}
	for code, n := range st.Status {
		if n > 0 {
			s.Status[strconv.Itoa(code)] = n
		}
	}
	for k, n := range st.Errors {
		if n > 0 {
			s.Errors[ErrorKind(k).String()] = n
		}
	}
	return s
}

func latencySummary(h *Histogram) LatencySummary {
	return LatencySummary{
		Min: ms(h.Min()), Mean: ms(h.Mean()), P50: ms(h.Quantile(0.5)), P90: ms(h.Quantile(0.9)),
		P95: ms(h.Quantile(0.95)), P99: ms(h.Quantile(0.99)), P999: ms(h.Quantile(0.999)), Max: ms(h.Max()),
	}
}

// WriteJSON writes s as indented JSON to path.
func (s *Summary) WriteJSON(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("loadtest: write summary: %w", err)
	}
	return nil
}

// fmtMs formats milliseconds with 3 significant-ish digits.
func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "ms"
}

// Print writes the summary table to w.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "\nscenario %s (%s) -> %s, %.1fs\n", s.Scenario, s.Executor, s.Target, s.DurationS)
	fmt.Fprintf(w, "  %-12s %d (%.0f/s), %d VUs\n", "requests", s.Requests, s.RPS, s.VUsMax)
	fmt.Fprintf(w, "  %-12s %d (%.4f)\n", "failed", s.Failed, s.ErrorRate)
	fmt.Fprintf(w, "  %-12s %d (%.4f)\n", "dropped", s.Dropped, s.DroppedRate)
	l := &s.Latency
	fmt.Fprintf(w, "  %-12s min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", "latency",
		fmtMs(l.Min), fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max))
	if d := s.DispatchLag; d != nil {
		fmt.Fprintf(w, "  %-12s p50 %s  p99 %s  max %s  (the generator's own lateness, part of latency)\n", "send lag",
			fmtMs(d.P50), fmtMs(d.P99), fmtMs(d.Max))
	}
	fmt.Fprintf(w, "  %-12s %s\n", "status", fmtCounts(s.Status))
	if len(s.Errors) > 0 {
		fmt.Fprintf(w, "  %-12s %s\n", "errors", fmtCounts(s.Errors))
	}
	for _, a := range s.Actions {
		mark := "ok"
		if !a.OK {
			mark = "FAILED: " + a.Error
		}
		fmt.Fprintf(w, "  action %-5s %s: %s\n", a.At, a.Name, mark)
	}
	for _, t := range s.Thresholds {
		mark := "✓"
		if !t.Pass {
			mark = "✗"
		}
		fmt.Fprintf(w, "  %s %-24s actual %.4g\n", mark, t.Expr, t.Actual)
	}
	if s.Pass {
		fmt.Fprintln(w, "PASS")
	} else {
		fmt.Fprintln(w, "FAIL")
	}
}

// fmtCounts formats a count map in key order.
func fmtCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []byte
	for i, k := range keys {
		if i > 0 {
			b = append(b, "  "...)
		}
		b = append(b, k...)
		b = append(b, '=')
		b = strconv.AppendUint(b, m[k], 10)
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}
