package core_test

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"fastgate/cmd/upstream/stub"
)

// BenchmarkWebSocketEcho measures a WebSocket's message round trip through
// the gateway's copy loop over in-memory connections: the client masks
// and sends a message, the stub echoes it, the client reads it back. The
// throughput counts both directions; the stub's and the client's framing
// are in it, so the copy loop alone is faster.
func BenchmarkWebSocketEcho(b *testing.B) {
	for _, size := range []int{128, 16 << 10} {
		b.Run("bytes="+strconv.Itoa(size), func(b *testing.B) {
			gw := startWS(b)
			ws := dialWS(b, gw, "/ws/bench")
			defer ws.Close()
			msg := bytes.Repeat([]byte{'x'}, size)
			b.SetBytes(int64(2 * size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ws.Send(stub.WSBinary, msg); err != nil {
					b.Fatal(err)
				}
				if _, got, err := ws.Receive(10 * time.Second); err != nil || len(got) != size {
					b.Fatalf("echo: %d bytes, %v", len(got), err)
				}
			}
		})
	}
}
