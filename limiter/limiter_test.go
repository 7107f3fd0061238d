package limiter

import (
	"strings"
	"testing"
	"time"
)

func TestLimitValidate(t *testing.T) {
	f := func(l Limit, want string) {
		t.Helper()
		err := l.Validate()
		if want == "" {
			if err != nil {
				t.Fatalf("Validate(%+v): got %q; want nil", l, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Validate(%+v): got %v; want error containing %q", l, err, want)
		}
	}
	f(Limit{Rate: 100, Per: time.Second}, "")
	f(Limit{Rate: 100, Per: time.Second, Burst: 5}, "")
	f(Limit{Rate: 0, Per: time.Second}, "limiter: rate must be > 0; got 0")
	f(Limit{Rate: 1, Per: 0}, "limiter: per must be > 0")
	f(Limit{Rate: 2e9, Per: time.Second}, "above one request per nanosecond")
	f(Limit{Rate: 1, Per: time.Second, Burst: -1}, "burst must be >= 0")
	f(Limit{Rate: 1, Per: time.Hour, Burst: 1 << 40}, "overflows")
}

// step is one check at virtual time at (ms since start).
type step struct {
	at         int64 // ms
	allowed    bool
	remaining  int
	resetAfter time.Duration
	retryAfter time.Duration
}

func runSteps(t *testing.T, l Limit, steps []step) {
	t.Helper()
	lim, err := New(l)
	if err != nil {
		t.Fatal(err)
	}
	const t0 = int64(1_700_000_000) * 1e9
	for i, s := range steps {
		d := lim.Allow(t0 + s.at*1e6)
		want := Decision{Allowed: s.allowed, Limit: lim.g.Burst(), Remaining: s.remaining, ResetAfter: s.resetAfter, RetryAfter: s.retryAfter}
		if d != want {
			t.Fatalf("step %d at %dms: got %+v; want %+v", i, s.at, d, want)
		}
	}
}

func TestGCRABurstThenSteady(t *testing.T) {
	ms := time.Millisecond
	// 10/s, burst 3: interval 100ms, tolerance 300ms
	runSteps(t, Limit{Rate: 10, Per: time.Second, Burst: 3}, []step{
		{0, true, 2, 100 * ms, 0},
		{0, true, 1, 200 * ms, 0},
		{0, true, 0, 300 * ms, 0},
		{0, false, 0, 300 * ms, 100 * ms}, // denied: reads only
		{0, false, 0, 300 * ms, 100 * ms}, // so a second denial says the same
		{50, false, 0, 250 * ms, 50 * ms},
		{100, true, 0, 300 * ms, 0}, // one interval later: one request
		{100, false, 0, 300 * ms, 100 * ms},
		{200, true, 0, 300 * ms, 0}, // steady rate: one per 100ms
		{300, true, 0, 300 * ms, 0},
		{350, false, 0, 250 * ms, 50 * ms},
		{1000, true, 2, 100 * ms, 0}, // idle long enough: full burst again
	})
}

func TestGCRADefaultBurstIsRate(t *testing.T) {
	ms := time.Millisecond
	runSteps(t, Limit{Rate: 2, Per: time.Second}, []step{
		{0, true, 1, 500 * ms, 0},
		{0, true, 0, 1000 * ms, 0},
		{0, false, 0, 1000 * ms, 500 * ms},
		{499, false, 0, 501 * ms, 1 * ms},
		{500, true, 0, 1000 * ms, 0},
		{1250, true, 0, 750 * ms, 0},
		{1500, true, 0, 1000 * ms, 0},
	})
}

func TestGCRADeniedDoesNotWrite(t *testing.T) {
	lim, _ := New(Limit{Rate: 1, Per: time.Second, Burst: 1})
	now := int64(1e18)
	lim.Allow(now)
	before := lim.tat.Load()
	for range 100 {
		if d := lim.Allow(now); d.Allowed {
			t.Fatalf("got allowed; want denied")
		}
	}
	if got := lim.tat.Load(); got != before {
		t.Fatalf("TAT after denials: got %d; want %d", got, before)
	}
}

func TestDecisionSeconds(t *testing.T) {
	f := func(d Decision, reset, retry int64) {
		t.Helper()
		if got := d.ResetSeconds(); got != reset {
			t.Fatalf("ResetSeconds(%v): got %d; want %d", d.ResetAfter, got, reset)
		}
		if got := d.RetryAfterSeconds(); got != retry {
			t.Fatalf("RetryAfterSeconds(%v): got %d; want %d", d.RetryAfter, got, retry)
		}
	}
	f(Decision{Allowed: true, ResetAfter: 0}, 0, 0)
	f(Decision{Allowed: true, ResetAfter: time.Millisecond}, 1, 0)
	f(Decision{ResetAfter: 2 * time.Second, RetryAfter: 10 * time.Millisecond}, 2, 1)
	f(Decision{ResetAfter: 2001 * time.Millisecond, RetryAfter: 1001 * time.Millisecond}, 3, 2)
}

func TestLimitWindow(t *testing.T) {
	l := Limit{Rate: 100, Per: time.Second, Burst: 200}
	if got := l.Window(); got != 2*time.Second {
		t.Fatalf("Window: got %s; want 2s", got)
	}
}
