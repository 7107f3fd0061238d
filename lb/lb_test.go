package lb

import (
	"fmt"
	"sync"
	"testing"
)

// testSet returns a Set of len(weights) targets "10.0.<i/256>.<i%256>:8080".
func testSet(tb testing.TB, opts SetOptions, weights ...int) *Set {
	tb.Helper()
	targets := make([]*Target, len(weights))
	for i, w := range weights {
		targets[i] = NewTarget(fmt.Sprintf("10.0.%d.%d:8080", i/256, i%256), w)
	}
	s, err := NewSet(targets, nil, opts)
	if err != nil {
		tb.Fatalf("NewSet: %s", err)
	}
	return s
}

// ones returns n weights of 1.
func ones(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
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
	if !tg.Available() || !tg.Healthy() || tg.Ejected() {
		t.Fatalf("a new target: got available=%v healthy=%v ejected=%v; want true true false", tg.Available(), tg.Healthy(), tg.Ejected())
	}
}

func TestSetInFlightSurvivesReload(t *testing.T) {
	a, b, c := NewTarget("a:1", 1), NewTarget("b:1", 1), NewTarget("c:1", 1)
	a.Begin() // before any Set: seeded into the first one
	s1, _ := NewSet([]*Target{a, b}, nil, SetOptions{})
	b.Begin()
	b.Begin()
	if got := s1.InFlight(); got != 3 {
		t.Fatalf("s1 in-flight: got %d; want 3", got)
	}
	// Reload: b leaves, c joins; b's requests end after the swap.
	s2, _ := NewSet([]*Target{a, c}, s1, SetOptions{})
	c.Begin()
	b.End()
	b.End()
	if got := s2.InFlight(); got != 2 {
		t.Fatalf("s2 in-flight after reload: got %d; want 2", got)
	}
	a.End()
	c.End()
	if got := s2.InFlight(); got != 0 {
		t.Fatalf("s2 in-flight at rest: got %d; want 0", got)
	}
}

func TestSetConcurrentInFlight(t *testing.T) {
	s := testSet(t, SetOptions{}, ones(4)...)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10000; i++ {
				tg := s.targets[i%4]
				tg.Begin()
				tg.End()
			}
		}()
	}
	wg.Wait()
	if got := s.InFlight(); got != 0 {
		t.Fatalf("in-flight: got %d; want 0", got)
	}
}

func TestNewSetErrors(t *testing.T) {
	a := NewTarget("a:1", 1)
	if _, err := NewSet([]*Target{a, a}, nil, SetOptions{}); err == nil {
		t.Fatalf("a target twice: got no error; want one")
	}
	s, err := NewSet(nil, nil, SetOptions{})
	if err != nil {
		t.Fatalf("empty set: %s", err)
	}
	for _, p := range []string{"round_robin", "weighted", "random", "least_conn", "p2c", "p2c_ewma", "maglev", "ring"} {
		b, err := New(p, s, Options{})
		if err != nil {
			t.Fatalf("%s over an empty set: %s", p, err)
		}
		if got := b.Pick(1, 0); got != -1 {
			t.Fatalf("%s over an empty set: got %d; want -1", p, got)
		}
	}
	if _, err := New("fastest", s, Options{}); err == nil {
		t.Fatalf("unknown policy: got no error; want one")
	}
	if _, err := New("maglev", s, Options{BoundedLoad: 0.5}); err == nil {
		t.Fatalf("bounded_load 0.5: got no error; want one")
	}
}

func TestHash(t *testing.T) {
	if HashString("user-42") != HashBytes([]byte("user-42")) {
		t.Fatalf("HashString and HashBytes differ on the same input")
	}
}
