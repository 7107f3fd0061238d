package lb

import (
	"math"
	"testing"
)

func TestSmoothScheduleNginx(t *testing.T) {
	f := func(weights []int32, want string) {
		t.Helper()
		sched, err := smoothSchedule(weights)
		if err != nil {
			t.Fatalf("weights %v: %s", weights, err)
		}
		got := make([]byte, len(sched))
		for k, i := range sched {
			got[k] = 'a' + byte(i)
		}
		if string(got) != want {
			t.Fatalf("weights %v: got %s; want %s", weights, got, want)
		}
	}
	f([]int32{5, 1, 1}, "aabacaa") // nginx's commit message for smooth WRR
	f([]int32{1, 1, 1}, "abc")
	f([]int32{2, 4, 2}, "bacb") // reduced by the gcd
	f([]int32{3, 2}, "ababa")
}

func TestWeightedShares(t *testing.T) {
	weights := []int{5, 1, 1, 3, 10}
	sum := 0
	for _, w := range weights {
		sum += w
	}
	f := func(policy string, picks int) {
		t.Helper()
		b, _ := New(policy, testSet(t, SetOptions{}, weights...), Options{})
		counts := make([]int, len(weights))
		for k := 0; k < picks; k++ {
			counts[b.Pick(0, 0)]++
		}
		for i, w := range weights {
			got, want := float64(counts[i])/float64(picks), float64(w)/float64(sum)
			if math.Abs(got-want) > 0.01 {
				t.Fatalf("%s, target %d (weight %d): got share %.4f; want %.4f±0.01", policy, i, w, got, want)
			}
		}
	}
	f(PolicyWeighted, 10000)
	f(PolicyRandom, 100000) // random: 1% is over 6σ at 100k picks
}

func TestWeightedTooLarge(t *testing.T) {
	weights := make([]int, 20)
	for i := range weights {
		weights[i] = MaxWeight - i
	}
	if _, err := NewWeighted(testSet(t, SetOptions{}, weights...)); err == nil {
		t.Fatalf("schedule over 1<<20 entries: got no error; want one")
	}
}
