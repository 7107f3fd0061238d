package lb

import (
	"sync"
	"testing"
)

func TestRoundRobinCycles(t *testing.T) {
	f := func(n, picks int) {
		t.Helper()
		targets := make([]*Target, n)
		for i := range targets {
			targets[i] = NewTarget("127.0.0.1:1", 1)
		}
		rr, err := NewRoundRobin(targets)
		if err != nil {
			t.Fatalf("NewRoundRobin: %s", err)
		}
		for i := 0; i < picks; i++ {
			if got, want := rr.Pick(0), i%n; got != want {
				t.Fatalf("pick %d of %d targets: got %d; want %d", i, n, got, want)
			}
		}
	}
	f(1, 5)
	f(3, 10)
	f(7, 100)
}

func TestRoundRobinEvenUnderConcurrency(t *testing.T) {
	const n, workers, perWorker = 4, 8, 10000
	targets := make([]*Target, n)
	for i := range targets {
		targets[i] = NewTarget("127.0.0.1:1", 1)
	}
	rr, _ := NewRoundRobin(targets)
	counts := make([][n]int, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				counts[w][rr.Pick(0)]++
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
	for i, v := range total {
		if want := workers * perWorker / n; v != want {
			t.Fatalf("target %d: got %d picks; want exactly %d", i, v, want)
		}
	}
}

func TestRoundRobinEmpty(t *testing.T) {
	if _, err := NewRoundRobin(nil); err != ErrNoTargets {
		t.Fatalf("got %v; want ErrNoTargets", err)
	}
}

func TestTargetInFlight(t *testing.T) {
	tg := NewTarget("127.0.0.1:9", 0)
	if tg.Weight() != 1 {
		t.Fatalf("weight: got %d; want 1", tg.Weight())
	}
	tg.Begin()
	tg.Begin()
	tg.End()
	if got := tg.InFlight(); got != 1 {
		t.Fatalf("in-flight: got %d; want 1", got)
	}
}
