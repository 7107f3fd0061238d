package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// countingServer is a loopback server that counts the connections it
// accepted and runs handle for each request.
type countingServer struct {
	url   string
	conns atomic.Int64
	reqs  atomic.Int64
}

func startCountingServer(t *testing.T, srv *fasthttp.Server, handle fasthttp.RequestHandler) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingServer{url: "http://" + ln.Addr().String()}
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		s.reqs.Add(1)
		handle(ctx)
	}
	srv.ConnState = func(_ net.Conn, st fasthttp.ConnState) {
		if st == fasthttp.StateNew {
			s.conns.Add(1)
		}
	}
	go srv.Serve(ln)                     //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() { srv.Shutdown() }) //nolint:errcheck
	return s
}

func ok(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }

// TestConnPoolLIFO: the open model sends on the connection that went idle
// last, and skips those that died while idle.
func TestConnPoolLIFO(t *testing.T) {
	var p connPool
	a, b, c := &openConn{}, &openConn{}, &openConn{}
	for _, x := range []*openConn{a, b, c} {
		p.put(x)
	}
	b.state.Store(connDead)
	if got := p.take(7); got != c || got.state.Load() != connBusy || got.due.Load() != 7 {
		t.Fatalf("take got %p (state %d); want the last put, %p, busy with its due time", got, got.state.Load(), c)
	}
	if got := p.take(8); got != a {
		t.Fatalf("take got %p; want %p: %p died while idle", got, a, b)
	}
	if got := p.take(9); got != nil {
		t.Fatalf("take of an empty pool got %p; want nil", got)
	}
}

// TestOpenReusesConnections: arrivals spaced wider than a response reuse
// the idle connection instead of opening one each.
func TestOpenReusesConnections(t *testing.T) {
	s := startCountingServer(t, &fasthttp.Server{}, ok)
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":200,"duration":"250ms",
		"pre_allocated_vus":5,"max_vus":100,"target":"`+s.url+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if sum.Requests != 50 || sum.Failed != 0 || s.reqs.Load() != 50 {
		t.Fatalf("got %d requests (%d failed), server saw %d; want 50, none failed", sum.Requests, sum.Failed, s.reqs.Load())
	}
	if n := s.conns.Load(); n >= 25 {
		t.Fatalf("50 arrivals 5ms apart opened %d connections; want them reused", n)
	}
}

// TestOpenIdleClose: a connection the server closes while it is idle is
// not a failed request; the next arrival opens a new one.
func TestOpenIdleClose(t *testing.T) {
	s := startCountingServer(t, &fasthttp.Server{IdleTimeout: time.Millisecond}, ok)
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":4,"duration":"1s",
		"max_vus":10,"target":"`+s.url+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if sum.Requests != 4 || sum.Failed != 0 {
		t.Fatalf("got %d requests, %d failed (errors %v); want 4, none failed", sum.Requests, sum.Failed, sum.Errors)
	}
	if n := s.conns.Load(); n != 4 {
		t.Fatalf("server accepted %d connections; want 4: each closed when idle, 250ms before the next arrival", n)
	}
}

// closeOnSecond serves one request per connection and closes the
// connection when the second comes, without a response: a server's close
// of an idle keep-alive connection crossing the client's next request. It
// returns the target URL and counts the connections.
func closeOnSecond(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var req fasthttp.Request
				if req.Read(br) != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) //nolint:errcheck
				req.Reset()
				req.Read(br) //nolint:errcheck // then close, unanswered
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &conns
}

// TestOpenRetryCrossedClose: a GET sent on a keep-alive connection the
// server closes without answering it is sent again on a new connection,
// as HTTP clients do, and succeeds; a POST is not sent again and fails.
func TestOpenRetryCrossedClose(t *testing.T) {
	url, conns := closeOnSecond(t)
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":20,"duration":"200ms",
		"max_vus":10,"target":"`+url+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if sum.Requests != 4 || sum.Failed != 0 || conns.Load() != 4 {
		t.Fatalf("GET: %d requests, %d failed (errors %v), %d connections; want 4 answered on 4 (3 sent again)",
			sum.Requests, sum.Failed, sum.Errors, conns.Load())
	}

	url, _ = closeOnSecond(t)
	sc = mustParse(t, `{"executor":"constant-arrival-rate","rate":20,"duration":"200ms","method":"POST",
		"max_vus":10,"target":"`+url+`"}`)
	sum = Run(context.Background(), sc, Options{})
	if sum.Requests != 4 || sum.Failed == 0 || sum.Errors["reset"] != sum.Failed {
		t.Fatalf("POST: %d requests, %d failed (errors %v); want 4, those on a reused connection failed as resets, not sent again",
			sum.Requests, sum.Failed, sum.Errors)
	}
}

// TestOpenConnectionClose: a response with Connection: close ends its
// connection; the requests all succeed, one connection each.
func TestOpenConnectionClose(t *testing.T) {
	s := startCountingServer(t, &fasthttp.Server{}, func(ctx *fasthttp.RequestCtx) {
		ctx.SetConnectionClose()
		ok(ctx)
	})
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":100,"duration":"200ms",
		"max_vus":50,"target":"`+s.url+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if sum.Requests != 20 || sum.Failed != 0 || s.conns.Load() != 20 {
		t.Fatalf("got %d requests, %d failed (errors %v), %d connections; want 20 on 20, none failed",
			sum.Requests, sum.Failed, sum.Errors, s.conns.Load())
	}
}

// TestOpenTimeout: a request without a response within the timeout fails
// as a timeout; the connection is closed, not reused.
func TestOpenTimeout(t *testing.T) {
	release := make(chan struct{})
	s := startCountingServer(t, &fasthttp.Server{}, func(ctx *fasthttp.RequestCtx) { <-release })
	t.Cleanup(func() { close(release) }) // before the server's Shutdown
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":20,"duration":"200ms","timeout":"20ms",
		"max_vus":10,"target":"`+s.url+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if sum.Requests != 4 || sum.Errors["timeout"] != 4 || sum.Failed != 4 {
		t.Fatalf("got %d requests, errors %v, %d failed; want 4 timeouts", sum.Requests, sum.Errors, sum.Failed)
	}
	if s.conns.Load() != 4 {
		t.Fatalf("server accepted %d connections; want 4: a timed-out connection is not reused", s.conns.Load())
	}
}

// TestOpenRefused: nothing listens on the target: every arrival fails as
// refused.
func TestOpenRefused(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":100,"duration":"200ms","max_vus":50,"target":"http://`+addr+`"}`)
	sum := Run(context.Background(), sc, Options{})
	if sum.Requests+sum.Dropped != 20 || sum.Errors["refused"] != sum.Requests || sum.Failed != sum.Requests {
		t.Fatalf("got requests %d dropped %d errors %v failed %d; want 20 iterations, each sent one refused", sum.Requests, sum.Dropped, sum.Errors, sum.Failed)
	}
}

// TestOpenRequests: the open model sends the scenario's method, paths in
// turn, headers and body; a HEAD response's Content-Length has no body
// after it.
func TestOpenRequests(t *testing.T) {
	var bad atomic.Value
	s := startCountingServer(t, &fasthttp.Server{}, func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Request.Header
		switch {
		case !ctx.IsPost() && !ctx.IsHead():
			bad.Store("method " + string(ctx.Method()))
		case ctx.IsPost() && len(ctx.PostBody()) != 1024:
			bad.Store(fmt.Sprintf("body of %d bytes", len(ctx.PostBody())))
		case string(h.Peek("X-Test")) != "yes" || string(h.UserAgent()) != userAgent:
			bad.Store("headers " + h.String())
		case string(ctx.Path()) != "/a" && string(ctx.Path()) != "/b":
			bad.Store("path " + string(ctx.Path()))
		}
		ctx.SetBodyString(strings.Repeat("r", 300))
	})
	for _, method := range []string{"POST", "HEAD"} {
		sc := mustParse(t, `{"executor":"constant-arrival-rate","rate":100,"duration":"200ms","max_vus":50,
			"method":"`+method+`","paths":["/a","/b"],"headers":{"X-Test":"yes"},"body_size":1024,"target":"`+s.url+`"}`)
		if method == "HEAD" {
			sc.Body, sc.BodySize = "", 0
		}
		sum := Run(context.Background(), sc, Options{})
		if sum.Requests != 20 || sum.Failed != 0 || sum.Status["200"] != 20 {
			t.Fatalf("%s: got %d requests, %d failed, statuses %v, errors %v; want 20 200s", method, sum.Requests, sum.Failed, sum.Status, sum.Errors)
		}
		if b := bad.Load(); b != nil {
			t.Fatalf("%s: the server got a wrong request: %v", method, b)
		}
		if want := map[string]uint64{"POST": 20 * 300, "HEAD": 0}[method]; sum.BytesIn != want {
			t.Fatalf("%s: got %d body bytes; want %d", method, sum.BytesIn, want)
		}
	}
}

// TestSleeper: a sleep lasts at least what was asked, across the
// sleeper's bounded waits, and a cancelled context ends it.
func TestSleeper(t *testing.T) {
	s := newSleeper()
	defer s.close()
	for _, d := range []time.Duration{200 * time.Microsecond, maxSleep + 10*time.Millisecond} {
		start := time.Now()
		if err := s.sleep(context.Background(), d); err != nil {
			t.Fatalf("sleep(%v): %v", d, err)
		}
		if got := time.Since(start); got < d {
			t.Fatalf("sleep(%v) returned after %v", d, got)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.sleep(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("sleep with a cancelled context got %v; want context.Canceled", err)
	}
}
