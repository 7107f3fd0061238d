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
		benchRead[fasthttp.ResponseHeader](b, head)
	})
}

// benchRead measures a fasthttp header type H (RequestHeader,
// ResponseHeader) reading head, one H and reader per goroutine.
func benchRead[H any, P interface {
	*H
	Read(*bufio.Reader) error
}](b *testing.B, head []byte) {
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var h H
		rd := bytes.NewReader(head)
		br := bufio.NewReader(rd)
		n := 0
		for pb.Next() {
			rd.Reset(head)
			br.Reset(rd)
			if P(&h).Read(br) == nil {
				n++
			}
		}
		benchSink.Add(int64(n))
	})
}

// benchRequest is a typical browser-ish API request: 7 fields.
const benchRequest = "GET /api/users/42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
	"Accept: application/json\r\nAccept-Encoding: gzip, br\r\nAccept-Language: en\r\nX-API-Key: bench-api-key-0123456789abcdef\r\n" +
	"Connection: keep-alive\r\n\r\n"

// BenchmarkCheckRequestFields measures the check of a request's header
// section as the gateway runs it on every request, against fasthttp
// parsing the whole request head (the cost it adds to).
func BenchmarkCheckRequestFields(b *testing.B) {
	var h fasthttp.RequestHeader
	if err := h.Read(bufio.NewReader(bytes.NewReader([]byte(benchRequest)))); err != nil {
		b.Fatal(err)
	}
	fields := append([]byte(nil), h.RawHeaders()...)
	b.Run("check", func(b *testing.B) {
		b.SetBytes(int64(len(fields)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			n := 0
			for pb.Next() {
				if CheckRequestFields(fields, false, func([]byte) { n++ }) == nil {
					n++
				}
			}
			benchSink.Add(int64(n))
		})
	})
	b.Run("baseline=fasthttp.RequestHeader.Read", func(b *testing.B) {
		benchRead[fasthttp.RequestHeader](b, []byte(benchRequest))
	})
}
