package lb

import (
	"math/rand/v2"
	"testing"
)

// remapped returns the share of keys whose target address differs between
// the lookups of two balancers.
func remapped(keys []uint64, a, b func(uint64) string) float64 {
	moved := 0
	for _, k := range keys {
		if a(k) != b(k) {
			moved++
		}
	}
	return float64(moved) / float64(len(keys))
}

func maglevAddr(tb testing.TB, s *Set) func(uint64) string {
	m, err := NewMaglev(s, Options{})
	if err != nil {
		tb.Fatalf("NewMaglev: %s", err)
	}
	return func(k uint64) string { return s.targets[m.Lookup(k)].addr }
}

func TestMaglevRemapOnAdd(t *testing.T) {
	keys := randomKeys(100000)
	var sum float64
	ns := []int{2, 5, 10, 20, 50, 100}
	for _, n := range ns {
		before := maglevAddr(t, testSet(t, SetOptions{}, ones(n-1)...))
		after := maglevAddr(t, testSet(t, SetOptions{}, ones(n)...))
		r := remapped(keys, before, after) * float64(n)
		t.Logf("maglev: adding target %d remaps %.3f × 1/n of keys", n, r)
		if r < 0.9 || r > 2 {
			t.Fatalf("maglev: adding target %d: got %.3f × 1/n remapped; want about 1", n, r)
		}
		sum += r
	}
	t.Logf("maglev: mean remap %.3f × 1/n over n=%v", sum/float64(len(ns)), ns)
}

func TestMaglevTableBalance(t *testing.T) {
	f := func(weights ...int) {
		t.Helper()
		s := testSet(t, SetOptions{}, weights...)
		m, _ := NewMaglev(s, Options{})
		counts := make([]int, len(weights))
		for _, i := range m.table {
			counts[i]++
		}
		sum := 0
		for _, w := range weights {
			sum += w
		}
		n, size := float64(len(weights)), float64(m.TableSize())
		worst := 0.0
		for i, c := range counts {
			// entries per unit of weight, relative to the mean
			worst = max(worst, float64(c)/float64(weights[i])/(size/float64(sum)))
		}
		if worst > 1+n/size {
			t.Fatalf("weights %v: got max/mean table entries %.5f; want ≤ 1+N/M = %.5f", weights, worst, 1+n/size)
		}
	}
	f(ones(3)...)
	f(ones(10)...)
	f(ones(100)...)
	f(ones(1000)...)
	f(1, 2, 3, 4)
	f(5, 1, 1, 10, 2)
}

func TestMaglevTableSize(t *testing.T) {
	f := func(n, want int) {
		t.Helper()
		m, _ := NewMaglev(testSet(t, SetOptions{}, ones(n)...), Options{})
		if got := m.TableSize(); got != want {
			t.Fatalf("%d targets: got table size %d; want %d", n, got, want)
		}
	}
	f(1, 65537)
	f(655, 65537)
	f(1000, 100003)
	if _, err := NewMaglev(testSet(t, SetOptions{}, 1, 1), Options{TableSize: 100}); err == nil {
		t.Fatalf("table size 100: got no error; want one (not a prime)")
	}
	m, err := NewMaglev(testSet(t, SetOptions{}, 1, 1), Options{TableSize: 101})
	if err != nil || m.TableSize() != 101 {
		t.Fatalf("table size 101: got %v, %v; want 101, nil", m, err)
	}
}

// TestHashStickiness: a healthy hashing balancer sends a key to the same
// target every time; an ejected target's keys move and come back.
func TestHashStickiness(t *testing.T) {
	for _, p := range []string{PolicyMaglev, PolicyRing} {
		s := testSet(t, SetOptions{}, ones(10)...)
		b, _ := New(p, s, Options{})
		keys := randomKeys(1000)
		first := make([]int, len(keys))
		for j, k := range keys {
			first[j] = b.Pick(k, 0)
		}
		s.targets[3].ReportCheck(false)
		for j, k := range keys {
			got := b.Pick(k, 0)
			if got == 3 || (first[j] != 3 && got != first[j]) {
				t.Fatalf("%s, target 3 down, key %d: got %d; want %d (or another than 3 for 3's keys)", p, j, got, first[j])
			}
		}
		s.targets[3].ReportCheck(true)
		for j, k := range keys {
			if got := b.Pick(k, rand.Uint64()&0); got != first[j] {
				t.Fatalf("%s, target 3 back, key %d: got %d; want %d", p, j, got, first[j])
			}
		}
	}
}
