package core

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkIdleConnMemory reports the memory an idle keep-alive connection
// holds after one proxied response, through the gateway on loopback, in
// heap-B/conn and stack-B/conn (the client's end of each connection, about
// 1 KB of heap, is in the figure):
//
//	go test ./core -run '^$' -bench IdleConnMemory -benchtime 1x
func BenchmarkIdleConnMemory(b *testing.B) {
	for _, size := range []int{100, 200 << 10} {
		b.Run(fmt.Sprintf("response=%dB", size), func(b *testing.B) {
			const conns = 500
			setWaitProbe(b, time.Millisecond)
			released := make(chan struct{}, conns)
			old := testHookBodiesReleased
			testHookBodiesReleased = func(*fasthttp.RequestCtx) { released <- struct{}{} }
			b.Cleanup(func() { testHookBodiesReleased = old })
			body := bytes.Repeat([]byte("m"), size)
			h := newTCPHarness(b, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }, "")
			br := bufio.NewReader(nil)
			var resp fasthttp.Response
			for i := 0; i < b.N; i++ {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&before)
				open := make([]net.Conn, 0, conns)
				for range conns {
					c, err := net.Dial("tcp4", h.addr)
					if err != nil {
						b.Fatal(err)
					}
					open = append(open, c)
					c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
					if _, err := c.Write([]byte("GET /x HTTP/1.1\r\nHost: gw\r\n\r\n")); err != nil {
						b.Fatal(err)
					}
					br.Reset(c)
					if err := resp.Read(br); err != nil || len(resp.Body()) != size {
						b.Fatalf("response: %d bytes, %v", len(resp.Body()), err)
					}
				}
				if size > maxIdleBody {
					for range conns {
						waitReleased(b, released)
					}
				}
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/conns, "heap-B/conn")
				b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/conns, "stack-B/conn")
				for _, c := range open {
					c.Close()
				}
			}
		})
	}
}
