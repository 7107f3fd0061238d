package loadtest

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// testServer is a loopback fasthttp server counting requests.
type testServer struct {
	url   string
	n     atomic.Int64
	posts atomic.Int64 // POST /reload
}

// startServer serves: /slow sleeps 50ms, /fail answers 503, POST /reload
// counts, anything else answers 200 "ok".
func startServer(t *testing.T) *testServer {
	t.Helper()
	s := &testServer{}
	s.url = startCountingServer(t, &fasthttp.Server{}, func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/slow":
			time.Sleep(50 * time.Millisecond)
		case "/fail":
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		case "/reload":
			if ctx.IsPost() {
				s.posts.Add(1)
			}
			return
		}
		s.n.Add(1)
		ctx.SetBodyString("ok")
	}).url
	return s
}

func mustParse(t *testing.T, js string) *Scenario {
	t.Helper()
	sc, err := Parse([]byte(js))
	if err != nil {
		t.Fatalf("Parse(%s): %s", js, err)
	}
	return sc
}

// TestOpenModelCounts: an open-model run dispatches every arrival of its
// schedule, each either sent or dropped, and every request sent reaches the
// server. Counts only; TestConstantArrivalRateAccuracy and
// TestRampingArrivalRateAccuracy (-tags long) check the timing.
func TestOpenModelCounts(t *testing.T) {
	f := func(js string) {
		t.Helper()
		s := startServer(t)
		sc := mustParse(t, strings.Replace(js, "TARGET", s.url, 1))
		want := newSchedule(sc).total()
		sum := Run(context.Background(), sc, Options{})
		if got := sum.Requests + sum.Dropped; got != uint64(want) {
			t.Fatalf("%s: iterations (requests %d + dropped %d) got %d; want the %d scheduled", js, sum.Requests, sum.Dropped, got, want)
		}
		if got := s.n.Load(); got != int64(sum.Requests) || sum.Failed != 0 || sum.Status["200"] != sum.Requests {
			t.Fatalf("%s: server received %d of %d requests, %d failed, statuses %v; want all, none failed, all 200", js, got, sum.Requests, sum.Failed, sum.Status)
		}
		if sum.Latency.P50 <= 0 || sum.Latency.Max < sum.Latency.P99 || sum.DispatchLag == nil {
			t.Fatalf("%s: latency %+v, dispatch lag %+v; want positive, ordered quantiles and a lag", js, sum.Latency, sum.DispatchLag)
		}
	}
	f(`{"executor":"constant-arrival-rate","rate":1000,"duration":"200ms","pre_allocated_vus":20,"max_vus":200,"target":"TARGET"}`)
	// 0 -> 1000/s over 200ms (100 arrivals), then 1000 -> 0 over 100ms (50)
	f(`{"executor":"ramping-arrival-rate","start_rate":0,"stages":[{"duration":"200ms","target":1000},{"duration":"100ms","target":0}],
		"pre_allocated_vus":20,"max_vus":200,"target":"TARGET"}`)
}

func TestSchedule(t *testing.T) {
	f := func(js string, want []time.Duration, total int) {
		t.Helper()
		sc := mustParse(t, js)
		s := newSchedule(sc)
		if got := s.total(); got != total {
			t.Fatalf("%s: total got %d; want %d", js, got, total)
		}
		for i, w := range want {
			got, ok := s.at(i)
			if !ok || (got-w).Abs() > time.Microsecond {
				t.Fatalf("%s: arrival %d got %v (%v); want %v", js, i, got, ok, w)
			}
		}
		n := len(want)
		for ; ; n++ {
			if _, ok := s.at(n); !ok {
				break
			}
		}
		if n != total {
			t.Fatalf("%s: arrivals got %d; want %d", js, n, total)
		}
	}
	f(`{"executor":"constant-arrival-rate","rate":4,"duration":"1s"}`,
		[]time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond}, 4)
	// rate 0 -> 8/s over 1s: N(t) = 4t², arrival i at sqrt(i/4).
	f(`{"executor":"ramping-arrival-rate","stages":[{"duration":"1s","target":8}]}`,
		[]time.Duration{0, 500 * time.Millisecond, 707106781, 866025403}, 4)
	// a flat stage at 0 has no arrivals; the next starts at 1s.
	f(`{"executor":"ramping-arrival-rate","stages":[{"duration":"1s","target":0},{"duration":"1s","target":0},{"duration":"500ms","target":4}]}`,
		[]time.Duration{2 * time.Second}, 1)
}

func TestClosedIterations(t *testing.T) {
	s := startServer(t)
	sc := mustParse(t, `{"executor":"constant-vus","vus":4,"iterations":500,"duration":"30s",
		"paths":["/a","/fail"],"expect":[200],"target":"`+s.url+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if sum.Requests != 500 || sum.VUsMax != 4 {
		t.Fatalf("got %d requests on %d VUs; want 500 on 4", sum.Requests, sum.VUsMax)
	}
	if sum.DispatchLag != nil {
		t.Fatalf("closed model reports a dispatch lag %+v; it has no schedule", sum.DispatchLag)
	}
	if sum.Status["503"] != 250 || sum.Failed != 250 || sum.ErrorRate != 0.5 {
		t.Fatalf("got status %v failed %d rate %v; want 250 of each path, 250 failed", sum.Status, sum.Failed, sum.ErrorRate)
	}
}

func TestDroppedIterations(t *testing.T) {
	s := startServer(t)
	// 5 VUs at 50ms each serve at most ~100/s of the 1000/s asked.
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":1000,"duration":"500ms",
		"pre_allocated_vus":2,"max_vus":5,"paths":["/slow"],"target":"`+s.url+`",
		"thresholds":["dropped == 0"]}`)
	sum := Run(context.Background(), sc, Options{})
	if sum.Dropped == 0 || sum.Requests+sum.Dropped != 500 || sum.VUsMax != 5 {
		t.Fatalf("got requests %d dropped %d VUs %d; want drops, 500 iterations, 5 VUs", sum.Requests, sum.Dropped, sum.VUsMax)
	}
	if sum.Pass || sum.Thresholds[0].Pass {
		t.Fatalf("threshold dropped == 0 passed with %d dropped", sum.Dropped)
	}
}

func TestTransportErrors(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	sc := mustParse(t, `{"executor":"constant-vus","vus":2,"iterations":20,"duration":"10s","target":"http://`+addr+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if sum.Requests != 20 || sum.Failed != 20 || sum.Errors["refused"] != 20 {
		t.Fatalf("got requests %d failed %d errors %v; want 20 refused", sum.Requests, sum.Failed, sum.Errors)
	}
}

func TestActions(t *testing.T) {
	s := startServer(t)
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":100,"duration":"500ms","target":"`+s.url+`",
		"actions":[{"at":"100ms","http":{"method":"POST","url":"{{admin}}/reload"}},
		           {"at":"200ms","signal":{"process":"upstream-2","name":"KILL"}}]}`)
	var out strings.Builder
	sum := Run(context.Background(), sc, Options{Vars: map[string]string{"admin": s.url}, Progress: &out})
	if s.posts.Load() != 1 || !sum.Actions[0].OK {
		t.Fatalf("reload action: %d POSTs, result %+v; want 1, ok", s.posts.Load(), sum.Actions[0])
	}
	if sum.Actions[1].OK || !strings.Contains(sum.Actions[1].Error, "-stack") || sum.Pass {
		t.Fatalf("signal action without procs: result %+v, pass %v; want a failure naming -stack", sum.Actions[1], sum.Pass)
	}
}
