//go:build long

// The wall-clock accuracy run of rate limiting: make test-long (go test
// -tags long).

package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/limiter/redis/redistest"
)

// Accuracy run: 3 fastgate processes share one redis-server; a global
// limit of accRate/s with burst accBurst; accOffered requests/s spread
// evenly over the three for accDuration.
const (
	accRate     = 1000
	accBurst    = 50
	accOffered  = 3600
	accDuration = 5 * time.Second
	accWorkers  = 16 // per gateway
)

// TestRateLimitAccuracy runs the same bounded load against three gateways
// with the limit global hybrid, global exact and local, and checks the
// admitted count against B + R·T: within 5% (hybrid), 1% (exact), and about
// three times that (local: each process counts alone).
func TestRateLimitAccuracy(t *testing.T) {
	redisAddr := startRedisServer(t)
	up := startUpstream(t, "rl")
	type result struct {
		mode               string
		admitted, expected float64
	}
	var results []result
	for _, c := range []struct {
		mode, limit string
		factor, tol float64
	}{
		{"hybrid", "scope: global", 1, 0.05},
		{"exact", "scope: global, mode: exact", 1, 0.01},
		{"local", "scope: local", 3, 0.05},
	} {
		t.Run(c.mode, func(t *testing.T) {
			cfg := fmt.Sprintf(`
redis: {address: %q}
upstreams:
  rl: {targets: [{url: "{{rl}}"}]}
routes:
  - name: api
    upstream: rl
    rate_limit: {rate: %d, burst: %d, key: route, %s}
`, redisAddr, accRate, accBurst, c.limit)
			gws := []*gateway{startGateway(t, cfg, up), startGateway(t, cfg, up), startGateway(t, cfg, up)}
			load := offer(t, gws)
			expected := c.factor * (accBurst + accRate*load.window.Seconds())
			admitted := float64(load.ok)
			checks, rts := redisCounters(t, gws)
			perReq := 0.0
			if checks > 0 {
				perReq = rts / checks
			}
			t.Logf("%s: offered %d in %s (%.0f/s), admitted %d, denied %d, other %d; expected %.0f (%.0f × (B + R·T)): ratio %.4f; redis round trips per check %.4f (%.0f / %.0f)",
				c.mode, load.sent, load.window.Round(time.Millisecond), float64(load.sent)/load.window.Seconds(),
				load.ok, load.limited, load.other, expected, c.factor, admitted/expected, perReq, rts, checks)
			if rate := float64(load.sent) / load.window.Seconds(); rate < 0.9*accOffered {
				t.Fatalf("offered only %.0f/s of %d/s: the machine is too loaded for the accuracy run", rate, accOffered)
			}
			if load.other > 0 {
				t.Fatalf("%d responses were neither 200 nor 429", load.other)
			}
			if math.Abs(admitted-expected) > c.tol*expected {
				t.Fatalf("%s: admitted %d; want %.0f ± %.0f%%", c.mode, load.ok, expected, c.tol*100)
			}
			if c.mode == "hybrid" && perReq > 0.05 {
				t.Fatalf("hybrid: %.4f Redis round trips per check; want ≤ 0.05", perReq)
			}
			results = append(results, result{c.mode, admitted, expected / c.factor})
		})
	}
	for _, r := range results {
		t.Logf("summary: %-6s admitted %.0f = %.3f × (B + R·T)", r.mode, r.admitted, r.admitted/r.expected)
	}
}

// loadResult counts the responses of one run.
type loadResult struct {
	sent, ok, limited, other int64
	window                   time.Duration // first send to last send
}

// offer sends accOffered requests per second, spread evenly over gws, for
// accDuration, on a fixed schedule (open model: a late request does not
// delay the ones after it beyond its worker). Bounded in count and time.
func offer(t *testing.T, gws []*gateway) loadResult {
	t.Helper()
	var res loadResult
	var first, last atomic.Int64
	perGW := accOffered / len(gws)
	total := int(accDuration.Seconds() * float64(perGW))
	start := time.Now().Add(100 * time.Millisecond)
	var wg sync.WaitGroup
	for _, g := range gws {
		c := &fasthttp.Client{MaxConnsPerHost: accWorkers, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
		url := "http://" + g.addr + "/api"
		for w := range accWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				for i := w; i < total; i += accWorkers {
					time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(perGW))))
					now := time.Now().UnixNano()
					first.CompareAndSwap(0, now)
					req.SetRequestURI(url)
					err := c.DoTimeout(req, resp, 5*time.Second)
					atomic.AddInt64(&res.sent, 1)
					for l := last.Load(); now > l && !last.CompareAndSwap(l, now); l = last.Load() {
					}
					switch {
					case err != nil:
						atomic.AddInt64(&res.other, 1)
					case resp.StatusCode() == 200:
						atomic.AddInt64(&res.ok, 1)
					case resp.StatusCode() == 429:
						atomic.AddInt64(&res.limited, 1)
					default:
						atomic.AddInt64(&res.other, 1)
					}
				}
			}()
		}
	}
	wg.Wait()
	res.window = time.Duration(last.Load() - first.Load())
	return res
}

// redisCounters sums the gateways' Redis checks and round trips from their
// /metrics.
func redisCounters(t *testing.T, gws []*gateway) (checks, roundTrips float64) {
	t.Helper()
	for _, g := range gws {
		resp, err := http.Get("http://" + g.adminAddr + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics: %s", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		checks += metricValue(string(body), "fastgate_ratelimit_redis_checks_total")
		roundTrips += metricValue(string(body), "fastgate_ratelimit_redis_roundtrips_total")
	}
	return checks, roundTrips
}

func metricValue(text, name string) float64 {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// startRedisServer starts a real redis-server for the test and returns
// its address (see redistest).
func startRedisServer(t *testing.T) string { return redistest.Start(t).Addr() }
