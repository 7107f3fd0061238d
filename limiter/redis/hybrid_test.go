package redis

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastgate/limiter"
)

// checker is one node's limiter.
type checker interface {
	Allow(now int64, key []byte) limiter.Decision
}

type localKeyed struct{ k *limiter.Keyed }

func (l localKeyed) Allow(now int64, key []byte) limiter.Decision { return l.k.Allow(now, key) }

// drive offers perNode checks/s to each node for d (bounded loops, real
// time) and returns the admitted count and the elapsed time.
func drive(nodes []checker, key string, perNode float64, d time.Duration) (admitted, offered int64, elapsed time.Duration) {
	var adm, off atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := []byte(key)
			done := int64(0)
			for {
				now := time.Now()
				el := now.Sub(start)
				if el >= d {
					break
				}
				target := int64(el.Seconds() * perNode)
				if done >= target {
					time.Sleep(500 * time.Microsecond)
					continue
				}
				for ; done < target; done++ {
					if n.Allow(now.UnixNano(), k).Allowed {
						adm.Add(1)
					}
				}
			}
			off.Add(done)
		}()
	}
	wg.Wait()
	return adm.Load(), off.Load(), time.Since(start)
}

// TestHybridAccuracy: 3 nodes share one redis-server and one limit of
// 1000/s (burst 50) under 3x offered load: hybrid within ±5%, exact within
// ±1%, 3 unshared local limiters about 3x. The three run side by side.
func TestHybridAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("5s real-time accuracy run; skipped with -short")
	}
	s := startRedis(t)
	c := newClient(t, s.Addr())
	l := limiter.Limit{Rate: 1000, Per: time.Second, Burst: 50}
	const dur, perNode = 5 * time.Second, 2000.0
	var hyb, exa, loc []checker
	var hs []*Hybrid
	var es []*Exact
	for range 3 {
		h, err := NewHybrid(c, "acc", l, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		hs, hyb = append(hs, h), append(hyb, h)
		e, _ := NewExact(c, "acc", l, Options{})
		es, exa = append(es, e), append(exa, e)
		k, _ := limiter.NewKeyed(l, limiter.KeyedOptions{})
		loc = append(loc, localKeyed{k})
	}
	type result struct {
		admitted, offered int64
		elapsed           time.Duration
	}
	var rh, re, rl result
	var wg sync.WaitGroup
	for _, x := range []struct {
		nodes []checker
		r     *result
	}{{hyb, &rh}, {exa, &re}, {loc, &rl}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x.r.admitted, x.r.offered, x.r.elapsed = drive(x.nodes, "consumer-1", perNode, dur)
		}()
	}
	wg.Wait()
	ratio := func(r result) float64 {
		limit := float64(l.Burst) + float64(l.Rate)*r.elapsed.Seconds()
		return float64(r.admitted) / limit
	}
	var hst, est Stats
	for i := range hs {
		a, b := hs[i].Stats(), es[i].Stats()
		hst.Checks, hst.RoundTrips, hst.Errors = hst.Checks+a.Checks, hst.RoundTrips+a.RoundTrips, hst.Errors+a.Errors
		est.Checks, est.RoundTrips, est.Errors = est.Checks+b.Checks, est.RoundTrips+b.RoundTrips, est.Errors+b.Errors
	}
	rtpc := float64(hst.RoundTrips) / float64(hst.Checks)
	t.Logf("limit 1000/s burst 50, 3 nodes, %s:", dur)
	t.Logf("  hybrid: admitted %d of %d offered (%.0f/s) = %.3f x limit; redis round trips/check %.4f (%d/%d), errors %d",
		rh.admitted, rh.offered, float64(rh.offered)/rh.elapsed.Seconds(), ratio(rh), rtpc, hst.RoundTrips, hst.Checks, hst.Errors)
	t.Logf("  exact:  admitted %d of %d offered (%.0f/s) = %.3f x limit; errors %d",
		re.admitted, re.offered, float64(re.offered)/re.elapsed.Seconds(), ratio(re), est.Errors)
	t.Logf("  local:  admitted %d of %d offered (%.0f/s) = %.3f x limit (no Redis: each node alone)",
		rl.admitted, rl.offered, float64(rl.offered)/rl.elapsed.Seconds(), ratio(rl))
	for _, x := range []struct {
		name string
		r    result
	}{{"hybrid", rh}, {"exact", re}, {"local", rl}} {
		if rate := float64(x.r.offered) / x.r.elapsed.Seconds(); rate < 3000 {
			t.Fatalf("%s offered: got %.0f/s; want >= 3000/s (machine too busy?)", x.name, rate)
		}
	}
	if r := ratio(rh); r < 0.95 || r > 1.05 {
		t.Fatalf("hybrid admitted: got %.3f x limit; want within ±5%%", r)
	}
	if r := ratio(re); r < 0.99 || r > 1.01 {
		t.Fatalf("exact admitted: got %.3f x limit; want within ±1%%", r)
	}
	if r := ratio(rl); r < 2.7 || r > 3.3 {
		t.Fatalf("local admitted: got %.3f x limit; want about 3", r)
	}
	if rtpc > 0.05 {
		t.Fatalf("hybrid redis round trips per check: got %.4f; want <= 0.05", rtpc)
	}
}

// TestHybridManyKeys: one sync round trip carries every key checked.
func TestHybridManyKeys(t *testing.T) {
	s := startRedis(t)
	c := newClient(t, s.Addr())
	h, err := NewHybrid(c, "many", limiter.Limit{Rate: 10, Per: time.Second, Burst: 2}, Options{SyncPeriod: 20 * time.Millisecond})
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
	start := time.Now()
	var n int64
	for deadline := start.Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n, err = c.Do(t.Context(), c.B().Dbsize().Build()).AsInt64(); err == nil && n == 5000 {
			break
		}
	}
	if n != 5000 {
		t.Fatalf("redis DBSIZE: got %d, %v; want 5000", n, err)
	}
	// one round trip per sync period, however many keys
	st := h.Stats()
	if maxRT := uint64(time.Since(start)/(20*time.Millisecond)) + 3; st.Errors != 0 || st.RoundTrips == 0 || st.RoundTrips > maxRT {
		t.Fatalf("Stats after 5000 keys: got %+v; want 1..%d round trips, 0 errors", st, maxRT)
	}
	// a key exhausted on another node is denied here after one sync
	h2, _ := NewHybrid(c, "many", limiter.Limit{Rate: 10, Per: time.Second, Burst: 2}, Options{SyncPeriod: 20 * time.Millisecond})
	defer h2.Close()
	key[0], key[1] = 1, 0
	h.Allow(time.Now().UnixNano(), key) // burst 2 now spent on h
	h2.Allow(time.Now().UnixNano(), key)
	time.Sleep(100 * time.Millisecond)
	if d := h2.Allow(time.Now().UnixNano(), key); d.Allowed {
		t.Fatalf("key spent on other nodes: got %+v; want denied", d)
	}
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
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5s", what)
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
