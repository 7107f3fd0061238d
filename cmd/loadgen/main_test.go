package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestRun runs the smoke scenario, shortened, against a loopback server and
// checks the exit code and the JSON summary.
func TestRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go srv.Serve(ln)     //nolint:errcheck
	defer srv.Shutdown() //nolint:errcheck
	out := filepath.Join(t.TempDir(), "out.json")
	f := func(code int, args ...string) {
		t.Helper()
		if got := run(args); got != code {
			t.Fatalf("run(%q) got exit code %d; want %d", args, got, code)
		}
	}
	tl := filepath.Join(t.TempDir(), "timeline.csv")
	f(0, "-quiet", "-scenario", "../../loadtest/scenarios/smoke.json", "-target", "http://"+ln.Addr().String(),
		"-duration", "300ms", "-json", out, "-timeline", tl, "-timeline-step", "100ms")
	csv, err := os.ReadFile(tl)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(csv)), "\n"); len(lines) < 3 || !strings.HasPrefix(lines[0], "t_ms,sent,") {
		t.Fatalf("timeline:\n%s\nwant a header and a line per 100ms step", csv)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Requests uint64 `json:"requests"`
		Pass     bool   `json:"pass"`
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Requests == 0 || !s.Pass {
		t.Fatalf("summary %s (err %v); want requests and pass", b, err)
	}
	// a failing threshold exits 1: nothing listens on the target.
	dead := ln.Addr().String()
	srv.Shutdown() //nolint:errcheck
	f(1, "-quiet", "-scenario", "../../loadtest/scenarios/smoke.json", "-target", "http://"+dead, "-duration", "200ms")
	f(2, "-scenario", "nope.json")
	f(2)
	f(2, "-quiet", "-scenario", "../../loadtest/scenarios/smoke.json", "-proc", "x=abc")
	f(2, "-quiet", "-scenario", "../../loadtest/scenarios/smoke.json", "-timeline", tl, "-timeline-step", "1us")
	f(2, "-quiet", "-scenario", "../../loadtest/scenarios/smoke.json", "-timeline", filepath.Join(t.TempDir(), "no", "dir.csv"))
}
