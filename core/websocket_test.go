package core_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/cmd/upstream/stub"
	"fastgate/core"
	"fastgate/core/coretest"
)

const wsConfig = `
upstreams:
  echo: {targets: [{url: "http://10.0.0.1:80"}]}
  nows: {targets: [{url: "http://10.0.0.2:80"}]}
routes:
  - {name: ws, match: {path: "/ws/{rest:*}"}, upstream: echo, websocket: {idle_timeout: 1m}}
  - {name: plain, match: {path: "/plain/{rest:*}"}, upstream: echo}
  - {name: nows, match: {path: "/nows/{rest:*}"}, upstream: nows, websocket: {}}
`

func startWS(t testing.TB) *coretest.Gateway {
	t.Helper()
	return coretest.Start(t, wsConfig, core.Options{}, map[string]fasthttp.RequestHandler{
		"10.0.0.1:80": stub.New(stub.Options{Name: "echo", Echo: true}).Handler,
		"10.0.0.2:80": func(ctx *fasthttp.RequestCtx) { ctx.Error("no websockets here", fasthttp.StatusForbidden) },
	})
}

func dialWS(t testing.TB, gw *coretest.Gateway, path string) *stub.WSConn {
	t.Helper()
	c, err := gw.DialFrom("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := stub.HandshakeWS(c, "gw", path, 10*time.Second)
	if err != nil {
		t.Fatalf("WebSocket to %s: %s", path, err)
	}
	return ws
}

// TestWebSocket: an upgrade on a route with websocket reaches the target
// and messages go both ways, text, binary and ping, until the client
// closes; a reload in the middle drops no connection.
func TestWebSocket(t *testing.T) {
	gw := startWS(t)
	const conns = 100
	wss := make([]*stub.WSConn, conns)
	for i := range wss {
		wss[i] = dialWS(t, gw, "/ws/echo")
	}
	exchange := func(round int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for i, ws := range wss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := []byte(fmt.Sprintf("round %d conn %d %s", round, i, strings.Repeat("x", i*100)))
				if err := ws.Send(stub.WSText, msg); err != nil {
					errs <- err
					return
				}
				op, got, err := ws.Receive(10 * time.Second)
				if err != nil || op != stub.WSText || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("conn %d: got %d %.40q %v; want the echo", i, op, got, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	exchange(1)
	cfg := coretest.Config(t, wsConfig+"  - {name: added, match: {path: /added}, upstream: echo}\n")
	if err := gw.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	exchange(2)
	ws := wss[0]
	if err := ws.Send(stub.WSPing, []byte("p")); err != nil {
		t.Fatal(err)
	}
	if op, got, err := ws.Receive(10 * time.Second); err != nil || op != stub.WSPong || string(got) != "p" {
		t.Fatalf("ping: got %d %q %v; want a pong", op, got, err)
	}
	big := bytes.Repeat([]byte{7}, 200<<10)
	if err := ws.Send(stub.WSBinary, big); err != nil {
		t.Fatal(err)
	}
	if op, got, err := ws.Receive(10 * time.Second); err != nil || op != stub.WSBinary || !bytes.Equal(got, big) {
		t.Fatalf("binary 200 KiB: got %d, %d bytes, %v", op, len(got), err)
	}
	for _, ws := range wss {
		ws.Close()
	}
}

// TestWebSocketRefused: an upgrade on a route without websocket is a plain
// request (the upgrade headers removed); a target that does not switch
// protocols is a 502 naming its status.
func TestWebSocketRefused(t *testing.T) {
	gw := startWS(t)
	c, err := gw.DialFrom("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stub.HandshakeWS(c, "gw", "/plain/echo", 10*time.Second); err == nil || !strings.Contains(err.Error(), "answered 200") {
		t.Fatalf("upgrade on a route without websocket: %v; want a plain 200", err)
	}
	resp := gw.Do("GET", "http://gw/nows/x", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: x", "Sec-WebSocket-Version: 13")
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 502 || string(resp.Header.Peek("X-Upstream-Status")) != "403" {
		t.Fatalf("upgrade refused by the target: got %d, X-Upstream-Status %q; want 502 and 403", resp.StatusCode(), resp.Header.Peek("X-Upstream-Status"))
	}
}

// TestWebSocketShutdown: open WebSockets are counted, a shutdown refuses
// new ones and closes the open ones once its deadline has passed.
func TestWebSocketShutdown(t *testing.T) {
	gw := startWS(t)
	a, b := dialWS(t, gw, "/ws/a"), dialWS(t, gw, "/ws/b")
	var sb strings.Builder
	gw.Metrics().Set().WritePrometheus(&sb)
	if !strings.Contains(sb.String(), "fastgate_websocket_connections 2\n") || !strings.Contains(sb.String(), "fastgate_websocket_connections_total 2\n") {
		t.Fatalf("metrics have no 2 open and 2 total WebSockets:\n%s", sb.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()         // a deadline already passed: close at once
	gw.Shutdown(ctx) //nolint:errcheck
	for _, ws := range []*stub.WSConn{a, b} {
		if _, _, err := ws.Receive(10 * time.Second); err == nil {
			t.Fatal("a WebSocket is still open after the shutdown's deadline")
		}
	}
}
