package loadtest

import (
	"math"
	"math/bits"
	"time"
)

// Layout of the log-linear buckets (the HdrHistogram idea, Gil Tene): values
// below 2*subBuckets get one bucket each; above, every power of two
// [2^(k+e), 2^(k+e+1)) is split into subBuckets equal buckets of width 2^e.
// A bucket's width is at most 1/subBuckets of its lower bound, so a value
// reported as its bucket's midpoint is within 1/(2*subBuckets) = 0.39% of
// the recorded one.
const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits // 128
	// numBuckets covers every non-negative int64.
	numBuckets = (63-subBucketBits)<<subBucketBits + 2*subBuckets
)

// MaxRelativeError is the largest relative error of Histogram.Quantile and
// the other value accessors against the recorded values they stand for.
const MaxRelativeError = 1.0 / (2 * subBuckets)

// Histogram counts durations (nanoseconds, recorded as int64) in log-linear
// buckets of bounded relative error (MaxRelativeError). Its zero value is
// empty and ready; it is about 60 KiB, so keep it in a long-lived struct.
// Histograms merge exactly (Merge), so every worker records into its own.
//
// A Histogram is not safe for concurrent use.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64 // nanoseconds, for the mean
	min    int64
	max    int64
}

// bucketOf returns the bucket index of v >= 0.
func bucketOf(v int64) int {
	e := bits.Len64(uint64(v)) - subBucketBits - 1
	if e <= 0 {
		return int(v)
	}
	return e<<subBucketBits + int(v>>e)
}

// bucketBounds returns the lowest value of bucket i and its width.
func bucketBounds(i int) (lo, width int64) {
	if i < 2*subBuckets {
		return int64(i), 1
	}
	e := i>>subBucketBits - 1
	m := int64(i - e<<subBucketBits)
	return m << e, 1 << e
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every value recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest recorded value (exact), 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest recorded value (exact), 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the mean of the recorded values (exact), 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value below which a fraction q (0..1) of the
// recorded values lie: the midpoint of the bucket holding the value of rank
// ceil(q*n), clamped to [Min, Max]. It returns 0 when h is empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bucketBounds(i)
			v := lo + w/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
