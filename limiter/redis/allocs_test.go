//go:build !race

package redis

import (
	"testing"
	"time"

	"fastgate/limiter"
)

func TestHybridAllowAllocs(t *testing.T) {
	s := startRedis(t)
	c := newClient(t, s.Addr())
	h, _ := NewHybrid(c, "allocs", limiter.Limit{Rate: 1000, Per: time.Second}, Options{})
	defer h.Close()
	key := []byte("consumer-42")
	now := time.Now().UnixNano()
	h.Allow(now, key)
	if n := testing.AllocsPerRun(1000, func() { now += 1e5; h.Allow(now, key) }); n != 0 {
		t.Fatalf("Hybrid.Allow of a known key: got %v allocs; want 0", n)
	}
}
