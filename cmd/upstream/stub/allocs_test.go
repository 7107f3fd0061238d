//go:build !race

package stub

import "testing"

func TestHandlerAllocs(t *testing.T) {
	f := func(opts Options, raw string) {
		t.Helper()
		s := New(opts)
		s.addr = "127.0.0.1:9001"
		ctx := newCtx(t, raw)
		n := testing.AllocsPerRun(100, func() {
			s.Handler(ctx)
		})
		if n != 0 {
			t.Fatalf("%q: got %v allocs per request; want 0", raw, n)
		}
	}
	f(Options{}, "GET / HTTP/1.1\r\nHost: stub\r\nUser-Agent: bench\r\n\r\n")
	f(Options{Size: maxBufferedSize}, "GET /big HTTP/1.1\r\nHost: stub\r\n\r\n")
	f(Options{}, "GET /?a=1&stub_status=201&stub_size=100 HTTP/1.1\r\nHost: stub\r\n\r\n")
	f(Options{}, "GET / HTTP/1.1\r\nHost: stub\r\nX-Stub-Status: 201\r\nX-Stub-Size: 100\r\nX-Stub-Close: 1\r\n\r\n")
	f(Options{Demo: DemoUsers}, "GET /users/3 HTTP/1.1\r\nHost: stub\r\n\r\n")
	f(Options{Demo: DemoOrders}, "GET /orders?user=2 HTTP/1.1\r\nHost: stub\r\n\r\n")
	f(Options{Demo: DemoProducts}, "GET /healthz HTTP/1.1\r\nHost: stub\r\n\r\n")
}
