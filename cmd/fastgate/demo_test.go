package main

import (
	"encoding/base64"
	"fastgate/cmd/upstream/stub"
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
	checkDemoSecurity(t, c, printed)
	checkDemoAggregateCache(t, c)
	if status, body, _ := get("http://127.0.0.1:8080/api/convert/EUR/USD?amount=10"); status != 200 || !strings.Contains(body, `"Result":"11.00"`) {
		t.Fatalf("SOAP conversion: %d %s", status, body)
	}
	if status, body, _ := get("http://127.0.0.1:8080/api/convert/EUR/XXX?amount=10"); status != 400 || !strings.Contains(body, "fault_code") {
		t.Fatalf("SOAP fault: %d %s", status, body)
	}
	if status, body, _ := get("http://127.0.0.1:8080/api/stock/sku-1002"); status != 200 || !strings.Contains(body, `"sku":"sku-1002"`) {
		t.Fatalf("gRPC transcoding: %d %s", status, body)
	}
	if status, body, _ := get("http://127.0.0.1:8080/inv/v1/stock/sku-9"); status != 404 || !strings.Contains(body, `"code":"NOT_FOUND"`) {
		t.Fatalf("gRPC NOT_FOUND: %d %s", status, body)
	}
	ws, err := stub.DialWS("127.0.0.1:8080", "/ws/echo", clientWait)
	if err != nil {
		t.Fatalf("demo WebSocket: %s", err)
	}
	if err := ws.Send(stub.WSText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if op, got, err := ws.Receive(clientWait); err != nil || op != stub.WSText || string(got) != "hi" {
		t.Fatalf("demo WebSocket echo: %d %q %v", op, got, err)
	}
	ws.Close()
	if c, err := net.Dial("tcp4", "127.0.0.1:9901"); err != nil {
		t.Fatalf("admin API: %s", err)
	} else {
		c.Close()
	}
}

// checkDemoSecurity follows the printed auth and CORS lines of the demo.
func checkDemoSecurity(t *testing.T, c *http.Client, printed string) {
	t.Helper()
	const account = "http://127.0.0.1:8080/api/account/profile"
	do := func(method, url string, headers ...string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %s", method, url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	if status, _, h := do("GET", account); status != 401 || len(h.Values("WWW-Authenticate")) != 3 || h.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("no credentials: %d, WWW-Authenticate %q, X-Frame-Options %q; want 401, 3 challenges, DENY", status, h.Values("WWW-Authenticate"), h.Get("X-Frame-Options"))
	}
	key := regexp.MustCompile(`X-API-Key: (demo-key-\w+)`).FindStringSubmatch(printed)
	token := regexp.MustCompile(`Authorization: Bearer (\S+)'`).FindStringSubmatch(printed)
	if key == nil || token == nil {
		t.Fatalf("the demo printed no API key or no token:\n%s", printed)
	}
	for _, x := range []struct{ name, header, value, consumer string }{
		{"api key", "X-API-Key", key[1], "mobile-app"},
		{"basic", "Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wonderland")), "alice"},
		{"jwt", "Authorization", "Bearer " + token[1], "demo-user"},
	} {
		status, body, _ := do("GET", account, x.header, x.value)
		if status != 200 || !strings.Contains(body, `["X-Consumer","`+x.consumer+`"]`) || strings.Contains(body, x.value) {
			t.Fatalf("%s: %d %s; want 200, X-Consumer %s upstream and no credential", x.name, status, body, x.consumer)
		}
	}
	if status, _, _ := do("GET", "http://127.0.0.1:8080/api/staff/panel", "X-API-Key", key[1]); status != 403 {
		t.Fatalf("mobile-app on /api/staff: %d; want 403", status)
	}
	status, _, h := do("OPTIONS", account, "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if status != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("CORS preflight: %d, Access-Control-Allow-Origin %q; want 204 and the origin", status, h.Get("Access-Control-Allow-Origin"))
	}
}

// checkDemoAggregateCache follows the demo's aggregation and cache lines.
func checkDemoAggregateCache(t *testing.T, c *http.Client) {
	t.Helper()
	do := func(method, url, body string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %s", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	status, body, _ := do("GET", "http://127.0.0.1:8080/api/dashboard/1", "")
	if status != 200 || !strings.Contains(body, `"user":{`) || !strings.Contains(body, `"orders":[{`) || !strings.Contains(body, `"name":"Ada Lovelace"`) {
		t.Fatalf("/api/dashboard/1: %d %s; want the user and their orders merged", status, body)
	}
	if status, body, _ := do("POST", "http://127.0.0.1:9901/cache/purge", `{"prefix": "GET 127.0.0.1/api/catalog/"}`); status != 200 || !strings.Contains(body, `"purged"`) {
		t.Fatalf("purge: %d %s", status, body)
	}
	const catalog = "http://127.0.0.1:8080/api/catalog/sku-1002"
	for i, want := range []string{"MISS", "HIT"} {
		status, body, h := do("GET", catalog, "")
		if status != 200 || h.Get("X-Cache") != want || !strings.Contains(body, "sku-1002") {
			t.Fatalf("catalog request %d: %d, X-Cache %q, %s; want 200 %s", i+1, status, h.Get("X-Cache"), body, want)
		}
		if want == "HIT" && h.Get("Age") == "" {
			t.Fatalf("catalog HIT without Age")
		}
	}
}
