package redis

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"fastgate/limiter"
)

// checker is one node's limiter.
type checker interface {
	Allow(now int64, key []byte) limiter.Decision
}

// newManualHybrid returns a Hybrid whose sync goroutine does not sync
// during the test (a SyncPeriod of an hour): the test runs each sync round
// itself by calling h.sync, always from the test goroutine (sync is not
// safe for concurrent use), so every event is ordered against the syncs.
func newManualHybrid(t *testing.T, c rueidis.Client, name string, l limiter.Limit) *Hybrid {
	t.Helper()
	// A sync of thousands of keys under -race on a busy machine can take
	// longer than the default 500ms; the tests are about order, not time.
	h, err := NewHybrid(c, name, l, Options{SyncPeriod: time.Hour, SyncTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// TestHybridManyKeys: one sync round trip carries every key checked, and a
// key spent on one node is denied on another once both have synced. The
// test runs the syncs itself (newManualHybrid) and the limit is 1 per hour,
// so neither the sync ticker nor the passing of time decides an outcome.
func TestHybridManyKeys(t *testing.T) {
	s := startRedis(t)
	c := newClient(t, s.Addr())
	l := limiter.Limit{Rate: 1, Per: time.Hour, Burst: 2}
	h := newManualHybrid(t, c, "many", l)
	allow := func(name string, h *Hybrid, key []byte, want bool) {
		t.Helper()
		if d := h.Allow(time.Now().UnixNano(), key); d.Allowed != want {
			t.Fatalf("%s: got %+v; want allowed=%v", name, d, want)
		}
	}
	key := make([]byte, 8)
	for i := range 5000 {
		key[0], key[1] = byte(i), byte(i>>8)
		allow("first check of a key", h, key, true)
	}
	h.sync()
	if n, err := c.Do(t.Context(), c.B().Dbsize().Build()).AsInt64(); err != nil || n != 5000 {
		t.Fatalf("redis DBSIZE after one sync: got %d, %v; want 5000", n, err)
	}
	// One pipelined round trip for the 5000 keys, sent twice: redis-server
	// is new, so every EVALSHA gets NOSCRIPT and is resent as EVAL.
	if st := h.Stats(); st.Errors != 0 || st.RoundTrips != 2 || st.Checks != 5000 {
		t.Fatalf("Stats after one sync of 5000 keys: got %+v; want 5000 checks, 2 round trips, 0 errors", st)
	}

	key[0], key[1] = 1, 0
	allow("second check on h (burst 2)", h, key, true)
	h.sync() // Redis has both admissions: the burst is spent
	if st := h.Stats(); st.Errors != 0 || st.RoundTrips != 3 {
		t.Fatalf("Stats after a second sync (script cached): got %+v; want 3 round trips, 0 errors", st)
	}
	allow("third check on h", h, key, false)

	// A node that has not synced the key yet admits on its own state: the
	// over-admission bound of the package doc. After one sync it knows.
	h2 := newManualHybrid(t, c, "many", l)
	allow("first check on h2, before its sync", h2, key, true)
	h2.sync()
	allow("key spent on other nodes, h2 after its sync", h2, key, false)
}

// TestRedisDown kills redis-server mid-run: fail-open limiters admit,
// fail-closed ones deny, both counted and reported; after a restart on the
// same port, all recover by themselves.
func TestRedisDown(t *testing.T) {
	s := startRedis(t)
	c := newClient(t, s.Addr())
	l := limiter.Limit{Rate: 100000, Per: time.Second}
	var reported atomic.Int64
	o := Options{OnError: func(error) { reported.Add(1) }, Timeout: 50 * time.Millisecond}
	oc := o
	oc.FailClosed = true
	hOpen, _ := NewHybrid(c, "open", l, o)
	defer hOpen.Close()
	hClosed, _ := NewHybrid(c, "closed", l, oc)
	defer hClosed.Close()
	eOpen, _ := NewExact(c, "open", l, o)
	eClosed, _ := NewExact(c, "closed", l, oc)
	key := []byte("k")
	all := func(name string, lim checker, want bool) {
		t.Helper()
		for i := range 20 {
			if d := lim.Allow(time.Now().UnixNano(), key); d.Allowed != want {
				t.Fatalf("%s check %d: got allowed=%v; want %v", name, i, d.Allowed, want)
			}
		}
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute) // generous: the loop ends as soon as cond holds
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within a minute", what)
			}
			hOpen.Allow(time.Now().UnixNano(), key) // keep keys dirty so syncs run
			hClosed.Allow(time.Now().UnixNano(), key)
			time.Sleep(10 * time.Millisecond)
		}
	}
	all("hybrid fail-closed, redis up", hClosed, true)
	all("exact fail-closed, redis up", eClosed, true)

	s.Stop()
	waitFor("hybrids degraded", func() bool { return hOpen.Degraded() && hClosed.Degraded() })
	all("hybrid fail-open, redis down", hOpen, true)
	all("hybrid fail-closed, redis down", hClosed, false)
	all("exact fail-open, redis down", eOpen, true)
	all("exact fail-closed, redis down", eClosed, false)
	for _, x := range []struct {
		name       string
		st         Stats
		open, shut bool
	}{{"hybrid open", hOpen.Stats(), true, false}, {"hybrid closed", hClosed.Stats(), false, true},
		{"exact open", eOpen.Stats(), true, false}, {"exact closed", eClosed.Stats(), false, true}} {
		if x.st.Errors == 0 || (x.st.FailOpen > 0) != x.open || (x.st.FailClosed > 0) != x.shut {
			t.Fatalf("%s Stats while down: got %+v; want errors > 0 and only fail-%s counted", x.name, x.st, map[bool]string{true: "open", false: "closed"}[x.open])
		}
	}
	if reported.Load() == 0 {
		t.Fatalf("OnError calls while down: got 0; want > 0")
	}

	s.Restart()
	waitFor("hybrids recovered", func() bool { return !hOpen.Degraded() && !hClosed.Degraded() })
	waitFor("exact recovered", func() bool { return eClosed.Allow(time.Now().UnixNano(), key).Allowed })
	all("hybrid fail-closed, redis back", hClosed, true)
	all("exact fail-closed, redis back", eClosed, true)
	before := eClosed.Stats().Errors
	all("exact fail-closed, redis back", eClosed, true)
	if after := eClosed.Stats().Errors; after != before {
		t.Fatalf("exact errors after recovery: got %d more; want 0", after-before)
	}
}

func TestHybridMaxKeys(t *testing.T) {
	s := startRedis(t)
	c := newClient(t, s.Addr())
	h, err := NewHybrid(c, "cap", limiter.Limit{Rate: 10, Per: time.Second}, Options{MaxKeys: 640})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	now := time.Now().UnixNano()
	key := make([]byte, 8)
	for i := range 5000 {
		key[0], key[1] = byte(i), byte(i>>8)
		h.Allow(now, key)
	}
	if got := h.Len(); got > 640 {
		t.Fatalf("Len after 5000 keys: got %d; want <= MaxKeys 640", got)
	}
}
