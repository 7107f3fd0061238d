package loadtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Threshold is a parsed condition on a Summary, such as "p99 < 50ms".
//
// Metrics: latency quantiles p50 p90 p95 p99 p99.9 (also k6's p(99)),
// min, med, avg, max — values are durations ("50ms", "1.5s"), a bare
// number meaning milliseconds as in k6; error_rate and dropped_rate
// (fractions of iterations); rps (completed requests per second);
// requests, failed and dropped (counts).
// Operators: < <= > >= == !=.
type Threshold struct {
	Expr   string  // as written
	Metric string  // normalized: "p99", "p99.9", "error_rate" ...
	Op     string  // "<" ...
	Value  float64 // milliseconds for latency metrics
}

// latencyMetrics lists the latency metric names and their quantile (-1:
// min, -2: avg, 2: max).
var latencyMetrics = map[string]float64{
	"p50": 0.5, "med": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p99.9": 0.999,
	"min": -1, "avg": -2, "max": 2,
}

var countMetrics = []string{"error_rate", "dropped_rate", "rps", "requests", "failed", "dropped"}

var thresholdOps = []string{"<=", ">=", "==", "!=", "<", ">"} // two-character first

// ParseThreshold parses "metric op value".
func ParseThreshold(s string) (Threshold, error) {
	t := Threshold{Expr: s}
	i, op := -1, ""
	for _, o := range thresholdOps {
		if j := strings.Index(s, o); j > 0 {
			i, op = j, o
			break
		}
	}
	if i < 0 {
		return t, fmt.Errorf("threshold %q: want \"metric op value\" such as \"p99 < 50ms\"", s)
	}
	t.Op = op
	t.Metric = normalizeMetric(strings.TrimSpace(s[:i]))
	val := strings.TrimSpace(s[i+len(op):])
	if _, ok := latencyMetrics[t.Metric]; ok {
		v, err := parseMillis(val)
		if err != nil {
			return t, fmt.Errorf("threshold %q: value %q: want a duration such as 50ms (a bare number is milliseconds)", s, val)
		}
		t.Value = v
		return t, nil
	}
	known := false
	for _, m := range countMetrics {
		known = known || m == t.Metric
	}
	if !known {
		return t, fmt.Errorf("threshold %q: unknown metric %q; want p50 p90 p95 p99 p99.9 min med avg max error_rate dropped_rate rps requests failed dropped", s, t.Metric)
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return t, fmt.Errorf("threshold %q: value %q: want a number", s, val)
	}
	t.Value = v
	return t, nil
}

// normalizeMetric maps k6 spellings to ours: p(99) -> p99.
func normalizeMetric(m string) string {
	m = strings.ToLower(m)
	if strings.HasPrefix(m, "p(") && strings.HasSuffix(m, ")") {
		m = "p" + m[2:len(m)-1]
	}
	switch m {
	case "p999":
		return "p99.9"
	case "mean":
		return "avg"
	}
	return m
}

// parseMillis parses a duration or a bare number of milliseconds.
func parseMillis(s string) (float64, error) {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return float64(d) / float64(time.Millisecond), nil
}

// Actual returns the metric's value in s (milliseconds for latencies).
func (t *Threshold) Actual(s *Summary) float64 {
	switch t.Metric {
	case "error_rate":
		return s.ErrorRate
	case "dropped_rate":
		return s.DroppedRate
	case "rps":
		return s.RPS
	case "requests":
		return float64(s.Requests)
	case "failed":
		return float64(s.Failed)
	case "dropped":
		return float64(s.Dropped)
	}
	l := &s.Latency
	switch t.Metric {
	case "p50", "med":
		return l.P50
	case "p90":
		return l.P90
	case "p95":
		return l.P95
	case "p99":
		return l.P99
	case "p99.9":
		return l.P999
	case "min":
		return l.Min
	case "avg":
		return l.Mean
	}
	return l.Max
}

// Pass reports whether actual satisfies the threshold.
func (t *Threshold) Pass(actual float64) bool {
	switch t.Op {
	case "<":
		return actual < t.Value
	case "<=":
		return actual <= t.Value
	case ">":
		return actual > t.Value
	case ">=":
		return actual >= t.Value
	case "==":
		return actual == t.Value
	}
	return actual != t.Value
}

// ThresholdResult is one evaluated threshold.
type ThresholdResult struct {
	Expr   string  `json:"expr"`
	Actual float64 `json:"actual"` // milliseconds for latency metrics
	Pass   bool    `json:"pass"`
}

// Evaluate checks every threshold of exprs against s. The expressions must
// be valid (Scenario.Validate); an invalid one fails.
func Evaluate(exprs []string, s *Summary) []ThresholdResult {
	out := make([]ThresholdResult, 0, len(exprs))
	for _, e := range exprs {
		t, err := ParseThreshold(e)
		if err != nil {
			out = append(out, ThresholdResult{Expr: e})
			continue
		}
		a := t.Actual(s)
		out = append(out, ThresholdResult{Expr: e, Actual: a, Pass: t.Pass(a)})
	}
	return out
}
