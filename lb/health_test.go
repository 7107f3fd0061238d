package lb

import (
	"testing"
	"time"
)

func TestActiveHealthSteps(t *testing.T) {
	s := testSet(t, SetOptions{HealthyThreshold: 2, UnhealthyThreshold: 3}, 1, 1)
	tg := s.targets[0]
	steps := []struct {
		ok      bool
		healthy bool
	}{
		{false, true}, {false, true}, {true, true}, // a pass restarts the failure count
		{false, true}, {false, true}, {false, false}, // 3rd failure in a row: down
		{true, false}, {false, false}, {true, false}, {true, true}, // 2 passes in a row: up
	}
	for k, st := range steps {
		tg.ReportCheck(st.ok)
		if got := tg.Healthy(); got != st.healthy {
			t.Fatalf("step %d (ok=%v): got healthy %v; want %v", k, st.ok, got, st.healthy)
		}
		if got, want := s.Available(), 1; !st.healthy && got != want {
			t.Fatalf("step %d: got %d available; want %d", k, got, want)
		}
	}
}

func TestEjectionSteps(t *testing.T) {
	const sec = int64(time.Second)
	s := testSet(t, SetOptions{
		ConsecutiveFailures: 3,
		EjectionTime:        10 * time.Second,
		MaxEjectionTime:     25 * time.Second,
		EjectionDecay:       60 * time.Second,
		MaxEjectionPercent:  50,
	}, ones(4)...)
	a, b, c := s.targets[0], s.targets[1], s.targets[2]
	type step struct {
		at       int64 // seconds
		do       func(now int64)
		ejected  [3]bool // a, b, c
		times    int     // a's multiplier
		overflow uint64
	}
	fail := func(tg *Target, k int) func(int64) {
		return func(now int64) {
			for range k {
				tg.ReportResult(now, true)
			}
		}
	}
	ok := func(tg *Target) func(int64) { return func(now int64) { tg.ReportResult(now, false) } }
	tick := func(now int64) { s.Tick(now) }
	steps := []step{
		{0, fail(a, 2), [3]bool{}, 0, 0},
		{0, ok(a), [3]bool{}, 0, 0}, // a success restarts the count
		{1, fail(a, 2), [3]bool{}, 0, 0},
		{1, fail(a, 1), [3]bool{true}, 1, 0}, // 3 in a row: ejected for 10s
		{10, tick, [3]bool{true}, 1, 0},
		{11, tick, [3]bool{}, 1, 0},           // back after 10s
		{12, fail(a, 3), [3]bool{true}, 2, 0}, // 2nd time: 20s
		{31, tick, [3]bool{true}, 2, 0},
		{32, tick, [3]bool{}, 2, 0},
		{33, fail(a, 3), [3]bool{true}, 3, 0}, // 3rd: 30s capped at 25s
		{33, fail(b, 3), [3]bool{true, true}, 3, 0},
		{33, fail(c, 3), [3]bool{true, true}, 3, 1}, // 3 of 4 > 50%: refused
		{43, tick, [3]bool{true, false}, 3, 1},      // b back after 10s (its 1st)
		{58, tick, [3]bool{}, 3, 1},                 // a back after 25s
		{117, tick, [3]bool{}, 3, 1},
		{118, tick, [3]bool{}, 2, 1}, // 60s un-ejected: multiplier decays
		{177, tick, [3]bool{}, 2, 1},
		{178, tick, [3]bool{}, 1, 1},
		{238, tick, [3]bool{}, 0, 1},
		{239, fail(a, 3), [3]bool{true}, 1, 1}, // decayed: 10s again
		{249, tick, [3]bool{}, 1, 1},
	}
	for k, st := range steps {
		st.do(st.at * sec)
		got := [3]bool{a.Ejected(), b.Ejected(), c.Ejected()}
		if got != st.ejected {
			t.Fatalf("step %d at %ds: got ejected %v; want %v", k, st.at, got, st.ejected)
		}
		if a.TimesEjected() != st.times {
			t.Fatalf("step %d at %ds: got a ejected times %d; want %d", k, st.at, a.TimesEjected(), st.times)
		}
		if s.EjectionsOverflow() != st.overflow {
			t.Fatalf("step %d at %ds: got overflow %d; want %d", k, st.at, s.EjectionsOverflow(), st.overflow)
		}
		n := 0
		for _, e := range got {
			if e {
				n++
			}
		}
		if s.Ejected() != n || s.Available() != 4-n {
			t.Fatalf("step %d at %ds: got %d ejected, %d available; want %d, %d", k, st.at, s.Ejected(), s.Available(), n, 4-n)
		}
	}
}

func TestEjectionDisabled(t *testing.T) {
	s := testSet(t, SetOptions{}, 1, 1)
	for k := 0; k < 100; k++ {
		s.targets[0].ReportResult(int64(k), true)
	}
	if s.targets[0].Ejected() {
		t.Fatalf("consecutive_failures 0: got ejected; want ejection off")
	}
	if got := s.targets[0].ConsecutiveFailures(); got != 100 {
		t.Fatalf("consecutive failures: got %d; want 100", got)
	}
}
