//go:build long

// The latency report of the balancing policies: make test-long (go test
// -tags long).

package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPolicyLatencyFigures reports p50/p99 of round_robin, p2c and p2c_ewma
// over 10 targets, one of them 50ms slow. It asserts nothing about speed;
// run with -v to see the figures.
func TestPolicyLatencyFigures(t *testing.T) {
	var ups []*upstream
	var targets []string
	for i := range 10 {
		var u *upstream
		if i == 0 {
			u = startUpstream(t, "s0", "-latency", "50ms")
		} else {
			u = startUpstream(t, fmt.Sprintf("s%d", i))
		}
		ups = append(ups, u)
		targets = append(targets, `{url: "{{`+u.stubName+`}}"}`)
	}
	for _, policy := range []string{"round_robin", "p2c", "p2c_ewma"} {
		g := startGateway(t, `
upstreams:
  u: {balancer: `+policy+`, targets: [`+strings.Join(targets, ", ")+`]}
routes: [{upstream: u}]
`, ups...)
		lat := measure(t, g, 8, 2000)
		slow := ups[0].stats(t).Get
		t.Logf("%-11s p50 %6.2fms  p99 %6.2fms  max %6.2fms  (slow target took %d requests so far)", policy,
			ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1]), slow)
		g.stop()
	}
}

// measure sends n GETs from clients goroutines as fast as they answer and
// returns the sorted latencies.
func measure(t *testing.T, g *gateway, clients, n int) []time.Duration {
	t.Helper()
	var mu sync.Mutex
	var lat []time.Duration
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= int64(n) {
				start := time.Now()
				r, err := g.try(http.MethodGet, "/x", "")
				d := time.Since(start)
				if err != nil || r.status != http.StatusOK {
					continue
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(lat) < n*9/10 {
		t.Fatalf("only %d of %d requests succeeded", len(lat), n)
	}
	slices.Sort(lat)
	return lat
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
