//go:build long

// Wall-clock accuracy runs of the open model: make test-long (go test -tags
// long). TestOpenModelCounts checks the same runs' counts in every build.

package loadtest

import (
	"context"
	"math"
	"testing"
)

func within(got, want, frac float64) bool { return math.Abs(got-want) <= want*frac }

func TestConstantArrivalRateAccuracy(t *testing.T) {
	s := startServer(t)
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":2000,"duration":"2s",
		"pre_allocated_vus":20,"max_vus":200,"target":"`+s.url+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if got := float64(s.n.Load()); !within(got, 4000, 0.02) {
		t.Errorf("server received %v requests; want 4000 ±2%%", got)
	}
	if got := sum.Requests + sum.Dropped; got != 4000 {
		t.Errorf("iterations (requests %d + dropped %d) got %d; want exactly 4000 scheduled", sum.Requests, sum.Dropped, got)
	}
	if sum.Failed != 0 || sum.Status["200"] != sum.Requests {
		t.Errorf("got failed %d, status %v; want no failures, all 200", sum.Failed, sum.Status)
	}
	if sum.Latency.P50 <= 0 || sum.Latency.Max < sum.Latency.P99 {
		t.Errorf("latency %+v; want positive, ordered quantiles", sum.Latency)
	}
	// The send lag is measured for every dispatch and is part of latency.
	if d := sum.DispatchLag; d == nil || d.Max > sum.Latency.Max+0.001 {
		t.Errorf("dispatch lag %+v with latency max %v; want a lag within the latency", d, sum.Latency.Max)
	}
}

func TestRampingArrivalRateAccuracy(t *testing.T) {
	s := startServer(t)
	// 0 -> 2000/s over 1s (1000 arrivals), then 2000 -> 0 over 0.5s (500).
	sc := mustParse(t, `{"executor":"ramping-arrival-rate","start_rate":0,
		"stages":[{"duration":"1s","target":2000},{"duration":"500ms","target":0}],
		"pre_allocated_vus":20,"max_vus":200,"target":"`+s.url+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if got := sum.Requests + sum.Dropped; !within(float64(got), 1500, 0.02) {
		t.Errorf("iterations got %d; want 1500 ±2%%", got)
	}
	if got := float64(s.n.Load()); !within(got, 1500, 0.02) {
		t.Errorf("server received %v; want 1500 ±2%%", got)
	}
}
