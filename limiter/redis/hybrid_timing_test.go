package redis

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"fastgate/limiter"
)

var decisionSink atomic.Int64

// BenchmarkAllow is the request-path cost of a cluster-wide limit: Hybrid
// decides from local state (Redis in the background), Exact waits on Redis.
func BenchmarkAllow(b *testing.B) {
	s := startRedis(b)
	c := newClient(b, s.Addr())
	l := limiter.Limit{Rate: 1000, Per: time.Second}
	for _, keys := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("hybrid/keys=%d", keys), func(b *testing.B) {
			h, _ := NewHybrid(c, "bench", l, Options{})
			defer h.Close()
			bench(b, h, keys)
			st := h.Stats()
			b.ReportMetric(float64(st.RoundTrips)/float64(st.Checks), "roundtrips/check")
		})
	}
	b.Run("exact/keys=1", func(b *testing.B) {
		e, _ := NewExact(c, "bench", l, Options{})
		bench(b, e, 1)
	})
}

func bench(b *testing.B, lim checker, keys int) {
	ks := make([][8]byte, keys)
	for i := range ks {
		binary.LittleEndian.PutUint64(ks[i][:], uint64(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n, i := 0, 0
		now := time.Now().UnixNano()
		for pb.Next() {
			if lim.Allow(now, ks[i][:]).Allowed {
				n++
			}
			if i++; i == keys {
				i = 0
			}
		}
		decisionSink.Add(int64(n))
	})
}
