//go:build !race

package lb

import "testing"

func TestRoundRobinPickAllocs(t *testing.T) {
	rr, _ := NewRoundRobin([]*Target{NewTarget("a:1", 1), NewTarget("b:1", 1)})
	if n := testing.AllocsPerRun(1000, func() { rr.Pick(0) }); n != 0 {
		t.Fatalf("RoundRobin.Pick: got %v allocs; want 0", n)
	}
}
