package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMalformedRequestsNeverReachUpstream: against the binary, each
// malformed request of the table is answered with the gateway's JSON error
// and its connection closed (a request pipelined behind it is never
// answered), and the upstream receives nothing.
func TestMalformedRequestsNeverReachUpstream(t *testing.T) {
	u := startUpstream(t, "plain", "-echo")
	g := startGateway(t, plainRoutes, u)
	f := func(raw string, want int) {
		t.Helper()
		c, err := net.DialTimeout("tcp4", g.addr, time.Second)
		if err != nil {
			t.Fatalf("dial: %s", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(clientWait)) //nolint:errcheck
		if _, err := io.WriteString(c, raw+"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatalf("%q: write: %s", raw, err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: read the response: %s", raw, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := &response{status: resp.StatusCode, header: resp.Header, body: body, close: resp.Close}
		checkGatewayError(t, strings.SplitN(raw, "\r\n", 2)[0], r, want)
		if !resp.Close {
			t.Errorf("%q: the response does not say Connection: close", raw)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Fatalf("%q: the connection carried more after the error: %q", raw, rest)
		}
	}
	f("GET / HTTP/1.1\nHost: a\n\n", 400)
	f("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400)
	f("GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n", 400)
	f("GET / HTTP/1.1\r\nHost: a\r\nX\x7fY: a\r\n\r\n", 400)
	f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400)
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400)
	f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400)
	f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400)
	f("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400)
	f("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505)
	f("GET http://other/ HTTP/1.1\r\nHost: a\r\n\r\n", 400)
	f("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501)
	if s := u.stats(t); s.Requests != 0 {
		t.Fatalf("the upstream got %d requests; want 0", s.Requests)
	}

	// The gateway's own answers keep the connection: TRACE is refused,
	// OPTIONS * answered, and neither is forwarded.
	rc := g.dialRaw(t)
	if r := rc.send("TRACE / HTTP/1.1", "Host: a", "Cookie: secret"); r.status != 405 || r.header.Get("Allow") == "" || strings.Contains(string(r.body), "secret") {
		t.Fatalf("TRACE: got %d, Allow %q, body %s; want 405 with Allow and no echo", r.status, r.header.Get("Allow"), r.body)
	}
	if r := rc.send("OPTIONS * HTTP/1.1", "Host: a"); r.status != 200 || r.header.Get("Allow") == "" {
		t.Fatalf("OPTIONS *: got %d, Allow %q; want 200 with Allow", r.status, r.header.Get("Allow"))
	}
	// A client cannot make the gateway drop X-Request-ID by naming it in
	// Connection, nor send headers the gateway strips.
	r := rc.send("GET /x HTTP/1.1", "Host: a", "Connection: X-Request-ID", "X-Request-ID: client-id",
		"X-HTTP-Method-Override: DELETE", "X_Forwarded_For: 6.6.6.6", "X-Consumer: admin")
	e := mustEcho(t, r)
	var ids []string
	for _, kv := range e.Headers {
		switch strings.ToLower(kv[0]) {
		case "x-request-id":
			ids = append(ids, kv[1])
		case "x-http-method-override", "x_forwarded_for", "x-consumer":
			t.Fatalf("the upstream got %s: %q; want it stripped", kv[0], kv[1])
		}
	}
	if len(ids) != 1 || ids[0] == "client-id" || ids[0] != r.header.Get("X-Request-ID") {
		t.Fatalf("X-Request-ID upstream got %q, client got %q; want one generated id, the same", ids, r.header.Get("X-Request-ID"))
	}
	if s := u.stats(t); s.Requests != 1 {
		t.Fatalf("the upstream got %d requests; want 1 (GET /x)", s.Requests)
	}
}
