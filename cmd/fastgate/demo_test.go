package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `fastgate -demo` (what `make run` runs) and follows the
// curl lines it prints: each documented URL answers as the comment says.
//
// The demo's ports are fixed (127.0.0.1:8080, :9901, :19101-19105), so
// test processes on one machine (two CI runs at once) take turns through
// a lock file.
func TestDemo(t *testing.T) {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "fastgate-demo-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	p := startProc(t, "fastgate -demo", fastgateBin, &out, "-demo", "-access-log", "off")
	defer func() {
		if code := p.stop(); code != 0 {
			t.Errorf("fastgate -demo exit code after SIGTERM: %d; want 0; stderr:\n%s", code, p.stderr.String())
		}
	}() // before the lock is released
	deadline := time.Now().Add(startTimeout)
	for !strings.Contains(out.String(), "Ctrl-C stops it") {
		select {
		case <-p.exited:
			t.Fatalf("fastgate -demo exited with %d; stderr:\n%s", p.code, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("fastgate -demo printed no curl lines after %s; stdout:\n%s\nstderr:\n%s", startTimeout, out.String(), p.stderr.String())
		}
		time.Sleep(pollInterval)
	}
	printed := out.String()
	urls := regexp.MustCompile(`curl -s[i]? (http://127\.0\.0\.1:8080/\S+)`).FindAllStringSubmatch(printed, -1)
	if len(urls) < 6 {
		t.Fatalf("the demo printed %d curl lines for the gateway; want at least 6:\n%s", len(urls), printed)
	}
	c := newClient()
	get := func(url string) (int, string, http.Header) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %s", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	for _, u := range urls {
		if status, body, _ := get(u[1]); status >= 500 {
			t.Fatalf("printed line GET %s: %d %s", u[1], status, body)
		}
	}
	if status, body, _ := get("http://127.0.0.1:8080/api/users/1"); status != 200 || !strings.Contains(body, `"id"`) {
		t.Fatalf("/api/users/1: %d %s", status, body)
	}
	if status, body, h := get("http://127.0.0.1:8080/status"); status != 200 || body != "{\"status\":\"ok\"}\n" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("/status (static): %d %q %v", status, body, h)
	}
	if status, _, h := get("http://127.0.0.1:8080/v1/users/7?x=1"); status != 308 || h.Get("Location") != "/api/users/7?x=1" {
		t.Fatalf("/v1/users/7 (redirect): %d Location %q", status, h.Get("Location"))
	}
	if c, err := net.Dial("tcp4", "127.0.0.1:9901"); err != nil {
		t.Fatalf("admin API: %s", err)
	} else {
		c.Close()
	}
}
