package loadtest

import (
	"bytes"
	"context"
	"encoding/csv"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// timelineRows parses a timeline's CSV into its columns by name.
func timelineRows(t *testing.T, tl *Timeline) []map[string]float64 {
	t.Helper()
	if tl == nil {
		t.Fatal("no timeline in the summary")
	}
	var b bytes.Buffer
	if err := tl.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatalf("timeline CSV: %v\n%s", err, b.String())
	}
	var rows []map[string]float64
	for _, rec := range recs[1:] {
		row := map[string]float64{}
		for i, name := range recs[0] {
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil {
				t.Fatalf("timeline column %s: %q: %v", name, rec[i], err)
			}
			row[name] = v
		}
		rows = append(rows, row)
	}
	return rows
}

func sumColumn(rows []map[string]float64, name string) int {
	n := 0.0
	for _, r := range rows {
		n += r[name]
	}
	return int(n)
}

// TestTimelineSteps: events count in the step of their offset (past the
// last: in the last), in-flight is what was sent less what ended, the
// maxima are per step, and the CSV ends at the last step with an event.
func TestTimelineSteps(t *testing.T) {
	tl := newTimeline(10*time.Millisecond, 50*time.Millisecond)
	ms := time.Millisecond
	tl.sent(1*ms, 0, true)
	tl.sent(2*ms, 3*ms, false)
	tl.ended(9*ms, 8*ms, false)
	tl.sent(15*ms, 1*ms, true)
	tl.dropped(16 * ms)
	tl.ended(25*ms, 23*ms, true)
	tl.ended(time.Hour, 5*ms, false) // past the last step
	rows := timelineRows(t, tl)
	if len(rows) != 6 {
		t.Fatalf("%d rows; want 6 (0 to 50ms)", len(rows))
	}
	want := []map[string]float64{
		{"t_ms": 0, "sent": 2, "opened": 1, "responses": 1, "in_flight": 1, "send_lag_max_ms": 3, "latency_max_ms": 8},
		{"t_ms": 10, "sent": 1, "opened": 1, "dropped": 1, "in_flight": 2, "send_lag_max_ms": 1},
		{"t_ms": 20, "failed": 1, "in_flight": 1, "latency_max_ms": 23},
		{"t_ms": 30, "in_flight": 1},
		{"t_ms": 40, "in_flight": 1},
		{"t_ms": 50, "responses": 1, "in_flight": 0, "latency_max_ms": 5},
	}
	for i, w := range want {
		for k, v := range rows[i] {
			if w[k] != v {
				t.Fatalf("row %d: %s = %g; want %g (row %v)", i, k, v, w[k], rows[i])
			}
		}
	}
	var nilTL *Timeline // no timeline asked for: the calls do nothing
	nilTL.sent(0, 0, true)
	nilTL.dropped(0)
	nilTL.ended(0, 0, false)
}

// TestTimelineRun: a run's timeline adds up to its summary: every request
// sent once and ended once, the connections opened are the server's, and
// nothing is left in flight.
func TestTimelineRun(t *testing.T) {
	s := startCountingServer(t, &fasthttp.Server{}, ok)
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":500,"duration":"300ms","max_vus":50,"target":"`+s.url+`"}`)
	sum := Run(context.Background(), sc, Options{TimelineStep: 50 * time.Millisecond})
	rows := timelineRows(t, sum.Timeline)
	if sum.Requests != 150 || sum.Failed != 0 {
		t.Fatalf("requests %d failed %d; want 150 answered", sum.Requests, sum.Failed)
	}
	if got := sumColumn(rows, "sent"); got != 150 {
		t.Fatalf("timeline sent %d; want 150", got)
	}
	if got := sumColumn(rows, "responses"); got != 150 {
		t.Fatalf("timeline responses %d; want 150", got)
	}
	if got := sumColumn(rows, "opened"); int64(got) != s.conns.Load() {
		t.Fatalf("timeline opened %d connections; the server accepted %d", got, s.conns.Load())
	}
	if last := rows[len(rows)-1]; last["in_flight"] != 0 {
		t.Fatalf("in flight at the end: %g; want 0", last["in_flight"])
	}

	// The closed model: requests sent and answered, none opened by arrivals.
	sc = mustParse(t, `{"executor":"constant-vus","vus":2,"iterations":40,"duration":"10s","target":"`+s.url+`"}`)
	sum = Run(context.Background(), sc, Options{TimelineStep: 50 * time.Millisecond})
	rows = timelineRows(t, sum.Timeline)
	if sent, resp := sumColumn(rows, "sent"), sumColumn(rows, "responses"); sent != 40 || resp != 40 {
		t.Fatalf("closed model timeline: sent %d, responses %d; want 40 and 40", sent, resp)
	}
}

// TestTimelineDropsAndFailures: with the one connection allowed held by the
// server, the timeline counts the other arrivals dropped and the held one
// failed (timed out).
func TestTimelineDropsAndFailures(t *testing.T) {
	release := make(chan struct{})
	s := startCountingServer(t, &fasthttp.Server{}, func(ctx *fasthttp.RequestCtx) { <-release })
	t.Cleanup(func() { close(release) }) // before the server's Shutdown
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":100,"duration":"200ms","timeout":"400ms",
		"pre_allocated_vus":1,"max_vus":1,"target":"`+s.url+`"}`)
	sum := Run(context.Background(), sc, Options{TimelineStep: 20 * time.Millisecond})
	rows := timelineRows(t, sum.Timeline)
	if sum.Requests != 1 || sum.Dropped != 19 {
		t.Fatalf("requests %d dropped %d; want 1 sent and held, 19 dropped", sum.Requests, sum.Dropped)
	}
	if d, f := sumColumn(rows, "dropped"), sumColumn(rows, "failed"); d != 19 || f != 1 {
		t.Fatalf("timeline dropped %d failed %d; want 19 and 1", d, f)
	}
	if last := rows[len(rows)-1]; last["in_flight"] != 0 || last["latency_max_ms"] < 400 {
		t.Fatalf("last step %v: want nothing in flight and the timeout's latency", last)
	}
}
