//go:build long

// Wall-clock accuracy runs: make test-long (go test -tags long).

package redis

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastgate/limiter"
)

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
