package redis

import (
	"strings"
	"testing"
	"time"

	"fastgate/limiter"
)

func TestNewErrors(t *testing.T) {
	f := func(l limiter.Limit, want string) {
		t.Helper()
		_, err := NewExact(nil, "r", l, Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("NewExact(nil, %+v): got %v; want error containing %q", l, err, want)
		}
	}
	f(limiter.Limit{Rate: 1, Per: time.Second}, `limiter/redis: limiter "r": nil rueidis client`)
}

func TestExactGCRA(t *testing.T) {
	s := startRedis(t)
	c := newClient(t, s.Addr())
	if _, err := NewExact(c, "r", limiter.Limit{Rate: 2e6, Per: time.Second}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "above one request per microsecond") {
		t.Fatalf("NewExact at 2M/s: got %v; want the microsecond error", err)
	}
	// 60/h, burst 3: interval 1 minute. Redis's clock runs during the test,
	// so durations are checked within 10s of their values at one instant:
	// far more than the time between two checks, however busy the machine.
	e, err := NewExact(c, "exact", limiter.Limit{Rate: 60, Per: time.Hour, Burst: 3}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const slack = 10 * time.Second
	f := func(key string, allowed bool, remaining int, reset, retry time.Duration) {
		t.Helper()
		d := e.Allow(time.Now().UnixNano(), []byte(key))
		if d.Allowed != allowed || d.Remaining != remaining || d.Limit != 3 {
			t.Fatalf("%s: got %+v; want allowed=%v remaining=%d limit=3", key, d, allowed, remaining)
		}
		if d.ResetAfter > reset || d.ResetAfter < reset-slack {
			t.Fatalf("%s: ResetAfter got %s; want about %s", key, d.ResetAfter, reset)
		}
		if d.RetryAfter > retry || (retry > 0 && d.RetryAfter < retry-slack) {
			t.Fatalf("%s: RetryAfter got %s; want about %s", key, d.RetryAfter, retry)
		}
	}
	f("a", true, 2, time.Minute, 0)
	f("a", true, 1, 2*time.Minute, 0)
	f("a", true, 0, 3*time.Minute, 0)
	f("a", false, 0, 3*time.Minute, time.Minute)
	f("a", false, 0, 3*time.Minute, time.Minute) // a denial writes nothing
	f("b", true, 2, time.Minute, 0)              // keys are independent
	// One interval passes: rather than wait a minute of Redis's clock, move
	// the key's TAT (µs) one interval back, which GCRA cannot tell apart.
	tat := "fastgate:rl:exact:e:a"
	if err := c.Do(t.Context(), c.B().Decrby().Key(tat).Decrement(time.Minute.Microseconds()).Build()).Error(); err != nil {
		t.Fatalf("DECRBY %s: %s", tat, err)
	}
	f("a", true, 0, 3*time.Minute, 0) // one interval later: one more
	f("a", false, 0, 3*time.Minute, time.Minute)
	if st := e.Stats(); st.Checks != 8 || st.RoundTrips != 8 || st.Errors != 0 {
		t.Fatalf("Stats: got %+v; want 8 checks, 8 round trips, 0 errors", st)
	}
}
