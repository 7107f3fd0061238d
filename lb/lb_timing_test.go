package lb

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

var pickSink atomic.Int64

// policies lists every policy name New accepts, less aliases.
var policies = []string{PolicyRoundRobin, PolicyWeighted, PolicyRandom, PolicyLeastConn, PolicyP2C, PolicyP2CEWMA, PolicyMaglev, PolicyRing}

// BenchmarkPick measures Pick of every policy under RunParallel over
// targets with a spread of in-flight requests (so least_conn can't stop at
// an idle one) and random pre-hashed keys.
func BenchmarkPick(b *testing.B) {
	for _, p := range append(policies, "maglev_bounded", "ring_bounded") {
		for _, n := range []int{10, 100} {
			b.Run(fmt.Sprintf("%s/targets=%d", p, n), func(b *testing.B) {
				benchPick(b, p, n)
			})
		}
	}
}

func benchPick(b *testing.B, policy string, n int) {
	s := testSet(b, SetOptions{}, ones(n)...)
	for i, t := range s.targets {
		for range 1 + i%7 {
			t.Begin()
		}
		t.Observe(1, time.Duration(1000+i*10))
	}
	var opts Options
	switch policy {
	case "maglev_bounded":
		policy, opts.BoundedLoad = PolicyMaglev, 1.25
	case "ring_bounded":
		policy, opts.BoundedLoad = PolicyRing, 1.25
	}
	bal, err := New(policy, s, opts)
	if err != nil {
		b.Fatal(err)
	}
	keys := randomKeys(1 << 12)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		sum, k := 0, rand.IntN(len(keys))
		for pb.Next() {
			k = (k + 1) & (len(keys) - 1)
			sum += bal.Pick(keys[k], 0)
		}
		pickSink.Add(int64(sum))
	})
}

// BenchmarkRoundRobinBaseline is the previous RoundRobin: one shared atomic
// counter, no health check. The baseline for the sharded rotor.
func BenchmarkRoundRobinBaseline(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			var next atomic.Uint64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				s := 0
				for pb.Next() {
					s += int((next.Add(1) - 1) % uint64(n))
				}
				pickSink.Add(int64(s))
			})
		})
	}
}

// BenchmarkMaglevLookup is the bare table lookup on a pre-hashed key.
func BenchmarkMaglevLookup(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			m, _ := NewMaglev(testSet(b, SetOptions{}, ones(n)...), Options{})
			keys := randomKeys(1 << 12)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				sum, k := 0, rand.IntN(len(keys))
				for pb.Next() {
					k = (k + 1) & (len(keys) - 1)
					sum += m.Lookup(keys[k])
				}
				pickSink.Add(int64(sum))
			})
		})
	}
}

func BenchmarkNewMaglev(b *testing.B) {
	s := testSet(b, SetOptions{}, ones(100)...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewMaglev(s, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewRing(b *testing.B) {
	s := testSet(b, SetOptions{}, ones(100)...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewRing(s, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTargetBeginEnd(b *testing.B) {
	s := testSet(b, SetOptions{}, ones(10)...)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		t := s.targets[rand.IntN(10)]
		for pb.Next() {
			t.Begin()
			t.End()
		}
	})
}

func randomKeys(n int) []uint64 {
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = r.Uint64()
	}
	return keys
}

// BenchmarkLeastConn measures LeastConn.Pick against its baseline, the full
// scan of every pickable target (what Pick did for every set size before it
// sampled), under RunParallel over targets with a spread of in-flight
// requests. "weighted" sets have unequal weights (1..4), so candidates are
// drawn from the alias table.
func BenchmarkLeastConn(b *testing.B) {
	for _, n := range []int{8, 10, 100, 1000} {
		b.Run(fmt.Sprintf("targets=%d", n), func(b *testing.B) {
			lc := NewLeastConn(benchLoadedSet(b, ones(n)))
			benchPicks(b, func() int { return lc.Pick(0, 0) })
		})
		b.Run(fmt.Sprintf("weighted/targets=%d", n), func(b *testing.B) {
			w := make([]int, n)
			for i := range w {
				w[i] = 1 + i%4
			}
			lc := NewLeastConn(benchLoadedSet(b, w))
			benchPicks(b, func() int { return lc.Pick(0, 0) })
		})
		b.Run(fmt.Sprintf("full-scan/targets=%d", n), func(b *testing.B) {
			s := benchLoadedSet(b, ones(n))
			benchPicks(b, func() int {
				v := s.view.Load()
				return s.scan(v, fastrange(rand.Uint32(), len(v.pick)), 0)
			})
		})
	}
}

// benchLoadedSet returns a set over weights with 1..7 requests in flight
// per target.
func benchLoadedSet(b *testing.B, weights []int) *Set {
	s := testSet(b, SetOptions{}, weights...)
	for i, t := range s.targets {
		for range 1 + i%7 {
			t.Begin()
		}
	}
	return s
}

func benchPicks(b *testing.B, pick func() int) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		sum := 0
		for pb.Next() {
			sum += pick()
		}
		pickSink.Add(int64(sum))
	})
}
