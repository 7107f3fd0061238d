package core

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestGatewayMaxConnsPerIP: server.max_conns_per_ip refuses a client IP's
// connection beyond the limit with a JSON 429, counts parked connections
// as open (they keep their socket), and takes one more once one closed.
func TestGatewayMaxConnsPerIP(t *testing.T) {
	parked, _ := setParkHooks(t, time.Millisecond)
	closed := setParkClosedHook(t, 8)
	h := newTCPHarnessTop(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }, "", "server: {max_conns_per_ip: 2}\n")
	get := func(c *rawClient, what string) {
		t.Helper()
		c.send("GET", "/", nil)
		if status, body := c.recv(); status != 200 || string(body) != "ok" {
			t.Fatalf("%s: %d %q; want 200 ok", what, status, body)
		}
	}
	a, b := dialRawClient(t, h.addr), dialRawClient(t, h.addr)
	get(a, "first connection")
	get(b, "second connection")
	waitEvent(t, parked, "first park")
	waitEvent(t, parked, "second park")

	refused := func(what string) {
		t.Helper()
		c := dialRawClient(t, h.addr)
		var resp fasthttp.Response
		if err := resp.Read(c.br); err != nil {
			t.Fatalf("%s: reading the refusal: %v", what, err)
		}
		if resp.StatusCode() != 429 || !strings.Contains(string(resp.Body()), "max_conns_per_ip") || !resp.ConnectionClose() {
			t.Fatalf("%s: %d %q (Connection: close %v); want a 429 naming server.max_conns_per_ip, and the connection closed",
				what, resp.StatusCode(), resp.Body(), resp.ConnectionClose())
		}
		if _, err := c.br.ReadByte(); err != io.EOF {
			t.Fatalf("%s: after the 429: %v; want EOF", what, err)
		}
	}
	refused("third connection, both others parked")

	// A parked connection the client closes is closed by the park set,
	// and no longer counts.
	a.conn.Close()
	waitEvent(t, closed, "the park set closing the client-closed connection")
	c := dialRawClient(t, h.addr)
	get(c, "a connection after one closed")
	get(b, "the parked second connection")
	refused("a connection beyond the two open")
}

// TestPerIPConnsCountOnce: a connection is counted from accept until its
// socket closes, once however often Close is called.
func TestPerIPConnsCountOnce(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := newPerIPConns(1)
	l := waitFirstListener{Listener: ln, perIP: p}
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ip, _ := connIP(c)
	if p.open(ip) {
		t.Fatalf("a second connection from %s was counted with one open and max 1", ip)
	}
	c.Close()
	c.Close()
	if !p.open(ip) || p.open(ip) {
		t.Fatalf("after the connection closed (twice): want one, and only one, more connection counted")
	}
	if got := p.n[ip]; got != 1 {
		t.Fatalf("count %d; want 1", got)
	}
	if newPerIPConns(0) != nil {
		t.Fatal("max_conns_per_ip 0 made a count; want none (unlimited)")
	}
}
