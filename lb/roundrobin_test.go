package lb

import (
	"sync"
	"testing"
)

func TestRoundRobinEven(t *testing.T) {
	f := func(n, rounds int) {
		t.Helper()
		rr := NewRoundRobin(testSet(t, SetOptions{}, ones(n)...))
		counts := make([]int, n)
		for i := 0; i < n*rounds; i++ {
			counts[rr.Pick(0, 0)]++
		}
		// Each cursor is an exact rotation: a target is off by at most one
		// pick per cursor.
		d := int(rr.r.made.Load())
		for i, c := range counts {
			if c < rounds-d || c > rounds+d {
				t.Fatalf("%d targets, target %d: got %d picks; want %d±%d", n, i, c, rounds, d)
			}
		}
	}
	f(1, 5)
	f(3, 1000)
	f(7, 1000)
	f(100, 100)
}

func TestRoundRobinEvenUnderConcurrency(t *testing.T) {
	const n, workers, perWorker = 4, 8, 10000
	rr := NewRoundRobin(testSet(t, SetOptions{}, ones(n)...))
	counts := make([][n]int, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				counts[w][rr.Pick(0, 0)]++
			}
		}(w)
	}
	wg.Wait()
	var total [n]int
	for _, c := range counts {
		for i, v := range c {
			total[i] += v
		}
	}
	want, d := workers*perWorker/n, int(rr.r.made.Load())
	for i, v := range total {
		if v < want-d || v > want+d {
			t.Fatalf("target %d: got %d picks; want %d±%d (cursors made)", i, v, want, d)
		}
	}
}
