package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestMain lets startFloor re-execute the test binary as a floor proxy,
// as it does the bench binary.
func TestMain(m *testing.M) {
	if spec := os.Getenv(floorEnv); spec != "" {
		if err := floorMain(spec, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

func TestMessageEnd(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		err  string
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, ""},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next", 27, ""},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0, ""},
		{"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\nab", 0, ""},
		{"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\nabcGET", 41, ""},
		{"HTTP/1.1 200 OK\r\nContent-Length:  2 \r\n\r\nok", 42, ""},
		{"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, "chunked"},
		{"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 0, "Content-Length"},
	} {
		n, err := messageEnd([]byte(c.in))
		if n != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("messageEnd(%q) = %d, %v; want %d, error with %q", c.in, n, err, c.want, c.err)
		}
	}
	got := appendForwarded(nil, []byte("POST / HTTP/1.1\r\nHost: a\r\n\r\nbody"), []byte("X-Forwarded-For: 1.2.3.4\r\n"))
	if want := "POST / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\nbody"; string(got) != want {
		t.Errorf("appendForwarded: %q; want %q", got, want)
	}
}

// TestFloorProxies sends each floor proxy what the bench sends (small and
// 16 KiB GETs, 1 KiB POSTs, on keep-alive connections, some pipelined)
// and checks every answer and what the upstream saw.
func TestFloorProxies(t *testing.T) {
	var mu sync.Mutex
	xffs := map[string]int{}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		xffs[string(ctx.Request.Header.Peek("X-Forwarded-For"))]++
		mu.Unlock()
		size, _ := strconv.Atoi(string(ctx.Request.Header.Peek("X-Stub-Size")))
		if len(ctx.PostBody()) > 0 {
			fmt.Fprintf(ctx, "got %d bytes", len(ctx.PostBody()))
			return
		}
		ctx.SetBody(bytes.Repeat([]byte("x"), max(size, 100)))
	}}
	go up.Serve(upLn)   //nolint:errcheck
	defer up.Shutdown() //nolint:errcheck

	for _, mode := range []string{"loop", "goroutine"} {
		t.Run(mode, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			f := &floor{upstream: upLn.Addr().String()}
			done := make(chan error, 1)
			go func() {
				if mode == "loop" {
					done <- f.serveLoop(ln)
				} else {
					done <- f.serveGoroutines(ln)
				}
			}()
			defer func() {
				f.stopped.Store(true)
				ln.Close()
				<-done
			}()
			mu.Lock()
			clear(xffs)
			mu.Unlock()
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- floorClient(ln.Addr().String())
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(xffs) != 1 || xffs["127.0.0.1"] != 8*60 {
				t.Errorf("upstream saw X-Forwarded-For %v; want 127.0.0.1 on all %d requests", xffs, 8*60)
			}
		})
	}
}

// floorClient sends 60 requests on one connection: 20 rounds of a small
// GET, a 16 KiB GET and a 1 KiB POST, every other round pipelined.
func floorClient(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get := "GET /bench/small HTTP/1.1\r\nHost: b\r\n\r\n"
	large := "GET /bench/large HTTP/1.1\r\nHost: b\r\nX-Stub-Size: 16384\r\n\r\n"
	post := "POST /bench/post HTTP/1.1\r\nHost: b\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("p", 1024)
	wants := []struct {
		req  string
		body string
	}{{get, strings.Repeat("x", 100)}, {large, strings.Repeat("x", 16384)}, {post, "got 1024 bytes"}}
	var resp fasthttp.Response
	for round := range 20 {
		if round%2 == 1 {
			if _, err := c.Write([]byte(get + large + post)); err != nil {
				return err
			}
		}
		for _, w := range wants {
			if round%2 == 0 {
				if _, err := c.Write([]byte(w.req)); err != nil {
					return err
				}
			}
			if err := resp.Read(br); err != nil {
				return fmt.Errorf("round %d, %.20q: %w", round, w.req, err)
			}
			if resp.StatusCode() != 200 || string(resp.Body()) != w.body {
				return fmt.Errorf("round %d, %.20q: status %d, %d bytes; want 200 and %d bytes", round, w.req,
					resp.StatusCode(), len(resp.Body()), len(w.body))
			}
		}
	}
	return nil
}

func TestOpenTargetsSkipFloors(t *testing.T) {
	got := openTargets([]string{targetDirect, targetFastgate, targetNginx, targetFloorGoroutine, targetFloorLoop})
	if strings.Join(got, ",") != "fastgate,nginx" {
		t.Errorf("openTargets: %v; want fastgate and nginx", got)
	}
}
