package core

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkStripHopByHop measures the removal of hop-by-hop headers from a
// browser's request, whose one is Connection: keep-alive; "none" is a
// request without any, "setup" the copy of the header each op starts with.
func BenchmarkStripHopByHop(b *testing.B) {
	for _, bc := range []struct {
		name, conn string
		strip      bool
	}{{"setup", "keep-alive", false}, {"none", "", true}, {"keep-alive", "keep-alive", true}} {
		b.Run(bc.name, func(b *testing.B) {
			var src, h fasthttp.RequestHeader
			src.SetRequestURI("/x")
			src.SetHost("example.com")
			src.Set("User-Agent", "Mozilla/5.0")
			src.Set("Accept", "*/*")
			src.Set("Accept-Language", "en")
			if bc.conn != "" {
				src.Set("Connection", bc.conn)
			}
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				src.CopyTo(&h)
				if bc.strip {
					buf = stripRequestHopByHop(&h, buf)
				}
			}
		})
	}
}
