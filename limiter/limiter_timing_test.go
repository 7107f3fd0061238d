package limiter

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var decisionSink atomic.Int64

// BenchmarkKeyedAllow: one hot key and 100k keys, each with a mostly-denied
// limit (a fixed virtual time: the common case under attack) and an
// always-admitted one (every check CASes). bytes/key is the heap per key.
func BenchmarkKeyedAllow(b *testing.B) {
	for _, keys := range []int{1, 100_000} {
		for _, mode := range []string{"deny", "admit"} {
			b.Run(fmt.Sprintf("keys=%d/%s", keys, mode), func(b *testing.B) {
				l := Limit{Rate: 100, Per: time.Second}
				if mode == "admit" {
					l = Limit{Rate: 1, Per: time.Nanosecond}
				}
				var ms0, ms1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms0)
				k, _ := NewKeyed(l, KeyedOptions{})
				ks := make([][8]byte, keys)
				for i := range ks {
					binary.LittleEndian.PutUint64(ks[i][:], uint64(i)*0x9E3779B97F4A7C15)
					k.Allow(t0, ks[i][:])
				}
				runtime.GC()
				runtime.ReadMemStats(&ms1)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					n, i := 0, 0
					for pb.Next() {
						if k.Allow(t0, ks[i][:]).Allowed {
							n++
						}
						if i++; i == keys {
							i = 0
						}
					}
					decisionSink.Add(int64(n))
				})
				runtime.KeepAlive(ks)
				// after the run: ResetTimer would clear it
				if keys >= 1000 { // below that the empty tables dominate
					b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/float64(keys), "bytes/key")
				}
			})
		}
	}
}

// BenchmarkBaselineMutexMap is the naive design for comparison: one mutex
// around a map[string]int64 of TATs, same GCRA.
func BenchmarkBaselineMutexMap(b *testing.B) {
	for _, keys := range []int{1, 100_000} {
		b.Run(fmt.Sprintf("keys=%d", keys), func(b *testing.B) {
			g, _ := NewGCRA(Limit{Rate: 100, Per: time.Second})
			var mu sync.Mutex
			m := map[string]int64{}
			ks := make([][8]byte, keys)
			for i := range ks {
				binary.LittleEndian.PutUint64(ks[i][:], uint64(i)*0x9E3779B97F4A7C15)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				n, i := 0, 0
				var tat atomic.Int64
				for pb.Next() {
					mu.Lock()
					tat.Store(m[string(ks[i][:])])
					d := g.Allow(&tat, t0)
					if d.Allowed {
						m[string(ks[i][:])] = tat.Load()
						n++
					}
					mu.Unlock()
					if i++; i == keys {
						i = 0
					}
				}
				decisionSink.Add(int64(n))
			})
		})
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	lim, _ := New(Limit{Rate: 100, Per: time.Second})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			if lim.Allow(t0).Allowed {
				n++
			}
		}
		decisionSink.Add(int64(n))
	})
}

func BenchmarkConcurrencyAcquireRelease(b *testing.B) {
	c, _ := NewConcurrency(1<<20, 0, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c.Acquire() {
				c.Release()
			}
		}
	})
}
