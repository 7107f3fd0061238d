package loadtest

import "testing"

func TestParseThreshold(t *testing.T) {
	f := func(in, metric, op string, value float64) {
		t.Helper()
		th, err := ParseThreshold(in)
		if err != nil {
			t.Fatalf("ParseThreshold(%q): %s", in, err)
		}
		if th.Metric != metric || th.Op != op || th.Value != value {
			t.Fatalf("ParseThreshold(%q) got %s %s %v; want %s %s %v", in, th.Metric, th.Op, th.Value, metric, op, value)
		}
	}
	f("p99 < 50ms", "p99", "<", 50)
	f("p(99)<50", "p99", "<", 50)
	f("p(99.9) <= 1s", "p99.9", "<=", 1000)
	f("p999<250us", "p99.9", "<", 0.25)
	f("max < 2s", "max", "<", 2000)
	f("mean<1ms", "avg", "<", 1)
	f("error_rate < 0.01", "error_rate", "<", 0.01)
	f("failed == 0", "failed", "==", 0)
	f("dropped != 3", "dropped", "!=", 3)
	f("rps >= 1000", "rps", ">=", 1000)

	bad := func(in string) {
		t.Helper()
		if _, err := ParseThreshold(in); err == nil {
			t.Fatalf("ParseThreshold(%q) got no error; want one", in)
		}
	}
	bad("p99")
	bad("p99 < fast")
	bad("latency < 5ms")
	bad("error_rate < 1%")
	bad("< 5")
}

func TestEvaluate(t *testing.T) {
	s := Summary{Requests: 1000, Failed: 5, ErrorRate: 0.005, RPS: 990, Dropped: 0,
		Latency: LatencySummary{P50: 1, P99: 40, P999: 80, Max: 120}}
	f := func(expr string, actual float64, pass bool) {
		t.Helper()
		r := Evaluate([]string{expr}, &s)[0]
		if r.Actual != actual || r.Pass != pass {
			t.Fatalf("%s: got actual %v pass %v; want %v %v", expr, r.Actual, r.Pass, actual, pass)
		}
	}
	f("p99 < 50ms", 40, true)
	f("p99 < 40ms", 40, false)
	f("p99 <= 40ms", 40, true)
	f("p99.9 < 50ms", 80, false)
	f("max < 1s", 120, true)
	f("error_rate < 0.01", 0.005, true)
	f("error_rate < 0.001", 0.005, false)
	f("failed == 0", 5, false)
	f("dropped == 0", 0, true)
	f("rps > 1000", 990, false)
	f("requests >= 1000", 1000, true)
	f("nonsense", 0, false)
}
