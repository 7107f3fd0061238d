package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"fastgate/cmd/upstream/stub"
)

// TestWebSocketReload: 100 WebSockets through the binary to the stub's
// echo keep working across a config reload (the reloaded config adds a
// route), and the gateway counts them.
func TestWebSocketReload(t *testing.T) {
	u := startUpstream(t, "echo", "-echo")
	const cfg = `
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
routes:
  - {name: ws, match: {path: "/ws/{rest:*}"}, upstream: echo, websocket: {}}
`
	g := startGateway(t, cfg, u)
	const conns = 100
	wss := make([]*stub.WSConn, conns)
	for i := range wss {
		ws, err := stub.DialWS(g.addr, "/ws/echo", clientWait)
		if err != nil {
			t.Fatalf("WebSocket %d: %s", i, err)
		}
		defer ws.Close()
		wss[i] = ws
	}
	round := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for i, ws := range wss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := []byte(fmt.Sprintf("round %d, connection %d", n, i))
				if err := ws.Send(stub.WSText, msg); err != nil {
					errs <- err
					return
				}
				if _, got, err := ws.Receive(clientWait); err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("connection %d: got %q, %v; want the echo", i, got, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	round(1)
	if err := os.WriteFile(g.configPath, []byte(strings.ReplaceAll(cfg, "{{echo}}", u.url())+"  - {name: added, match: {path: /added}, upstream: echo}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := g.admin(t, "POST", "/reload", ""); r.status != 200 {
		t.Fatalf("POST /reload: %d %s", r.status, r.body)
	}
	round(2)
	if m := g.admin(t, "GET", "/metrics", ""); !strings.Contains(string(m.body), "fastgate_websocket_connections 100\n") {
		t.Fatalf("metrics have no 100 open WebSockets:\n%s", m.body)
	}
}
