package lb

import "testing"

// TestPickNeverUnusable checks every policy, with and without bounded
// loads: targets in skip and unavailable targets are never picked, -1 comes
// back when none qualifies, and panic mode picks over all targets.
func TestPickNeverUnusable(t *testing.T) {
	for _, p := range policies {
		for _, c := range []float64{0, 1.25} {
			f := func(down []int, skip uint64, threshold int, want map[int]bool) {
				t.Helper()
				s := testSet(t, SetOptions{PanicThreshold: threshold}, 1, 2, 1, 3, 1, 1)
				for _, i := range down {
					s.targets[i].ReportCheck(false)
				}
				b, err := New(p, s, Options{BoundedLoad: c})
				if err != nil {
					t.Fatalf("%s: %s", p, err)
				}
				got := map[int]bool{}
				key := uint64(0)
				for k := 0; k < 3000; k++ {
					key += 0x9e3779b97f4a7c15
					i := b.Pick(key, skip)
					if !want[i] {
						t.Fatalf("%s (bounded %v), down %v, skip %b: got %d; want one of %v", p, c, down, skip, i, want)
					}
					got[i] = true
					if i >= 0 {
						s.targets[i].Begin() // load, so least_conn moves on
					}
				}
				if len(got) != len(want) {
					t.Fatalf("%s (bounded %v), down %v, skip %b: got picks %v; want all of %v", p, c, down, skip, got, want)
				}
			}
			all := map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true}
			f(nil, 0, 0, all)
			f([]int{1, 3}, 0, 0, map[int]bool{0: true, 2: true, 4: true, 5: true})
			f(nil, 0b101010, 0, map[int]bool{0: true, 2: true, 4: true})
			f([]int{0}, 0b101010, 0, map[int]bool{2: true, 4: true})
			f([]int{0, 1, 2, 3, 4, 5}, 0, -1, map[int]bool{-1: true}) // panic off
			f([]int{1, 2, 3, 4, 5}, 1, -1, map[int]bool{-1: true})
			f(nil, 0b111111, 0, map[int]bool{-1: true})
			// Panic mode: 2 of 6 available is below 50%; all are picked but the skipped.
			f([]int{0, 1, 2, 3}, 0b100000, 0, map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true})
			f([]int{0, 1, 2, 3, 4, 5}, 0b1, 0, map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true})
		}
	}
}

func TestPanicMode(t *testing.T) {
	f := func(threshold, down int, want bool) {
		t.Helper()
		s := testSet(t, SetOptions{PanicThreshold: threshold}, ones(4)...)
		for i := 0; i < down; i++ {
			s.targets[i].ReportCheck(false)
		}
		if got := s.Panic(); got != want {
			t.Fatalf("threshold %d, %d of 4 down: got panic %v; want %v", threshold, down, got, want)
		}
		if got := s.Available(); got != 4-down {
			t.Fatalf("threshold %d, %d of 4 down: got %d available; want %d", threshold, down, got, 4-down)
		}
	}
	f(0, 0, false)
	f(0, 2, false) // 50% is not below 50%
	f(0, 3, true)
	f(0, 4, true)
	f(80, 1, true)
	f(-1, 4, false)
}
