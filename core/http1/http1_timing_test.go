package http1

import (
	"bufio"
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

var benchSink atomic.Int64

// BenchmarkCheckResponseHead measures the check of a typical 200 response
// head (benchHead: 156 bytes, 5 fields), alone and with HeadEnd finding
// it, against fasthttp parsing the same head (the cost the check adds to).
func BenchmarkCheckResponseHead(b *testing.B) {
	head := []byte(benchHead)
	b.Run("check", func(b *testing.B) {
		b.SetBytes(int64(len(head)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			n := 0
			for pb.Next() {
				if CheckResponseHead(head) == nil {
					n++
				}
			}
			benchSink.Add(int64(n))
		})
	})
	b.Run("headend+check", func(b *testing.B) {
		b.SetBytes(int64(len(head)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			n := 0
			for pb.Next() {
				if end := HeadEnd(head); end > 0 && CheckResponseHead(head[:end]) == nil {
					n++
				}
			}
			benchSink.Add(int64(n))
		})
	})
	b.Run("baseline=fasthttp.ResponseHeader.Read", func(b *testing.B) {
		b.SetBytes(int64(len(head)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var h fasthttp.ResponseHeader
			rd := bytes.NewReader(head)
			br := bufio.NewReader(rd)
			n := 0
			for pb.Next() {
				rd.Reset(head)
				br.Reset(rd)
				if h.Read(br) == nil {
					n++
				}
			}
			benchSink.Add(int64(n))
		})
	})
}
