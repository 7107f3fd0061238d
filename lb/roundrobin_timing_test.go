package lb

import (
	"fmt"
	"sync/atomic"
	"testing"
)

var pickSink atomic.Int64

func BenchmarkRoundRobinPick(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			targets := make([]*Target, n)
			for i := range targets {
				targets[i] = NewTarget("127.0.0.1:1", 1)
			}
			rr, _ := NewRoundRobin(targets)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				s := 0
				for pb.Next() {
					s += rr.Pick(0)
				}
				pickSink.Add(int64(s))
			})
		})
	}
}
