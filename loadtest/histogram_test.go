package loadtest

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	f := func(v int64) {
		t.Helper()
		i := bucketOf(v)
		lo, w := bucketBounds(i)
		if v < lo || v-lo >= w {
			t.Fatalf("value %d: bucket %d holds [%d, %d); want it to hold the value", v, i, lo, lo+w)
		}
		if lo >= 2*subBuckets && float64(w)/float64(lo) > 1.0/subBuckets {
			t.Fatalf("value %d: bucket width %d over lower bound %d exceeds 1/%d", v, w, lo, subBuckets)
		}
		if i >= numBuckets {
			t.Fatalf("value %d: bucket %d; want < %d", v, i, numBuckets)
		}
	}
	for v := int64(0); v < 5000; v++ {
		f(v)
	}
	for e := 0; e < 63; e++ {
		f(1 << e)
		f(1<<e - 1)
		f(1<<e + 1)
	}
	f(math.MaxInt64)
}

// checkQuantiles records vals and compares every reported quantile with
// the exact one.
func checkQuantiles(t *testing.T, name string, vals []int64) {
	t.Helper()
	var h Histogram
	for _, v := range vals {
		h.Record(time.Duration(v))
	}
	slices.Sort(vals)
	for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
		rank := int(math.Ceil(q*float64(len(vals)))) - 1
		want := float64(vals[rank])
		got := float64(h.Quantile(q))
		if math.Abs(got-want) > want*MaxRelativeError+1 {
			t.Errorf("%s: quantile %v got %v; want %v within %.2f%%", name, q, got, want, 100*MaxRelativeError)
		}
	}
	if h.Max() != time.Duration(vals[len(vals)-1]) || h.Min() != time.Duration(vals[0]) {
		t.Errorf("%s: min/max got %v/%v; want %v/%v", name, h.Min(), h.Max(), vals[0], vals[len(vals)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("%s: count got %d; want %d", name, h.Count(), len(vals))
	}
}

func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 200000
	uniform := make([]int64, n)
	expo := make([]int64, n)
	for i := range n {
		uniform[i] = int64(r.Float64() * float64(100*time.Millisecond))
		expo[i] = int64(r.ExpFloat64() * float64(2*time.Millisecond))
	}
	checkQuantiles(t, "uniform 0..100ms", uniform)
	checkQuantiles(t, "exponential mean 2ms", expo)
	small := []int64{0, 1, 2, 3, 255, 256, 257, 1000}
	checkQuantiles(t, "small values", small)
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := int64(1); i <= 10000; i++ {
		d := time.Duration(i * 1000)
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	if a != all {
		t.Fatalf("merged histogram differs from the one that recorded everything")
	}
	var empty Histogram
	a.Merge(&empty)
	if a.Count() != 10000 || a.Min() != time.Microsecond || a.Max() != 10*time.Millisecond {
		t.Fatalf("after merging an empty histogram got count %d min %v max %v; want 10000 1µs 10ms", a.Count(), a.Min(), a.Max())
	}
	if got := a.Mean(); got != 5000500*time.Nanosecond {
		t.Fatalf("mean got %v; want 5.0005ms", got)
	}
}

func TestHistogramEmpty(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatalf("empty histogram: got p99 %v max %v mean %v; want zeros", h.Quantile(0.99), h.Max(), h.Mean())
	}
	h.Record(-5)
	if h.Max() != 0 || h.Count() != 1 {
		t.Fatalf("negative value: got max %v count %d; want 0 and 1", h.Max(), h.Count())
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i&0xfffff) * 1000)
	}
}
