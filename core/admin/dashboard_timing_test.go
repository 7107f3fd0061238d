package admin

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchExposition is the metric text of a gateway with routes routes, each
// with a few status codes and the 18 duration buckets.
func benchExposition(routes int) []byte {
	var b strings.Builder
	for r := range routes {
		for _, code := range []string{"200", "404", "503"} {
			fmt.Fprintf(&b, "fastgate_requests_total{route=\"r%d\",code=\"%s\",method=\"GET\"} %d\n", r, code, 1000+r)
		}
		n := 0
		for _, le := range []string{"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf"} {
			n += 10
			fmt.Fprintf(&b, "fastgate_request_duration_seconds_bucket{route=\"r%d\",le=\"%s\"} %d\n", r, le, n)
		}
		fmt.Fprintf(&b, "fastgate_request_duration_seconds_sum{route=\"r%d\"} 1.5\n", r)
	}
	return []byte(b.String())
}

// BenchmarkCollect is the sampler's once-a-second parse, by route count.
func BenchmarkCollect(b *testing.B) {
	for _, routes := range []int{10, 100} {
		text := benchExposition(routes)
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				parseSample(text, time.Time{})
			}
		})
	}
}

// BenchmarkComputeStats is one GET /stats over a full minute of samples.
func BenchmarkComputeStats(b *testing.B) {
	for _, routes := range []int{10, 100} {
		text := benchExposition(routes)
		samples := make([]*sample, sampleKeep)
		names := make([]string, routes)
		for i := range samples {
			samples[i] = parseSample(text, time.Unix(int64(i), 0))
		}
		for i := range names {
			names[i] = fmt.Sprintf("r%d", i)
		}
		l := &live{routes: names}
		b.Run(fmt.Sprintf("routes=%d", routes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				computeStats(samples, l)
			}
		})
	}
}
