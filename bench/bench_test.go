package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/loadtest"
)

// testBin returns a directory with fastgate, upstream and loadgen built from
// this tree (or $FASTGATE_TEST_BIN when set, to reuse prebuilt ones).
func testBin(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("FASTGATE_TEST_BIN"); d != "" {
		return d
	}
	dir := t.TempDir()
	if err := buildBinaries(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBenchEndToEnd runs the harness on a tiny run (1s per row, 1 repeat,
// one workload) and checks the structure of what it prints and writes,
// never the speed.
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the bench harness runs real processes")
	}
	requireProxy(t, targetNginx)
	requireProxy(t, targetHAProxy)
	targets := []string{targetDirect, targetFastgate, targetNginx, targetHAProxy, targetFloorGoroutine, targetFloorLoop}
	out, stdout, res, b := runBench(t, "-only", "get-small,fastgate-features", "-open-load", "0",
		"-targets", strings.Join(targets, ","), "-idle-conns", "50", "-idle-settle", "10ms",
		"-slow-clients", "20", "-slow-every", "100ms", "-slow-time", "300ms")
	for _, field := range []string{`"open"`, `"open_load"`, `"offered_rps"`, `"dropped"`, `"send_lag_p99_ms"`} {
		if bytes.Contains(b, []byte(field)) {
			t.Errorf("-open-load 0: latest.json has %s; want no open-model fields", field)
		}
	}
	if len(res.Workloads) != 2 || res.Workloads[0].Name != "get-small" || res.Workloads[1].Name != "fastgate-features" {
		t.Fatalf("workloads got %d (%+v); want get-small and fastgate-features", len(res.Workloads), res.Workloads)
	}
	small := res.Workloads[0]
	if len(small.Rows) != len(targets) {
		t.Fatalf("get-small rows got %d; want %d (%v)", len(small.Rows), len(targets), targets)
	}
	for i, rw := range small.Rows {
		if rw.Target != targets[i] {
			t.Errorf("row %d target got %s; want %s", i, rw.Target, targets[i])
		}
		if len(rw.Runs) != 1 || rw.Requests == 0 || rw.RPS.Median <= 0 || rw.CPUPerReq.Median <= 0 || rw.P99.Median <= 0 {
			t.Errorf("row %s: runs %d, requests %d, rps %v, cpu %v, p99 %v; want 1 run and positive figures",
				rw.Target, len(rw.Runs), rw.Requests, rw.RPS, rw.CPUPerReq, rw.P99)
		}
		if rw.Errors != 0 {
			t.Errorf("row %s: %d errors; want 0", rw.Target, rw.Errors)
		}
		if r := rw.Runs[0]; r.UserPerReq <= 0 || r.SysPerReq <= 0 || math.Abs(r.UserPerReq+r.SysPerReq-r.CPUPerReq) > 1e-6*r.CPUPerReq {
			t.Errorf("row %s: user %v + kernel %v µs per request; want both positive, adding up to the CPU's %v",
				rw.Target, r.UserPerReq, r.SysPerReq, r.CPUPerReq)
		}
	}
	feat := res.Workloads[1]
	featTargets := []string{targetFastgate, targetNginx, targetHAProxy}
	if len(feat.Rows) != len(featTargets) {
		t.Fatalf("fastgate-features rows %+v; want %v", feat.Rows, featTargets)
	}
	for i, rw := range feat.Rows {
		if rw.Target != featTargets[i] || rw.Requests == 0 || rw.Errors != 0 {
			t.Errorf("fastgate-features row %d: %s, %d requests, %d errors; want %s, some requests, none failed",
				i, rw.Target, rw.Requests, rw.Errors, featTargets[i])
		}
	}
	if _, ok := small.Ratios[targetNginx]; !ok {
		t.Errorf("get-small ratios %v; want nginx and haproxy", small.Ratios)
	}
	if _, ok := feat.Ratios[targetHAProxy]; !ok {
		t.Errorf("fastgate-features ratios %v; want nginx and haproxy, from its own rows", feat.Ratios)
	}
	for _, name := range []string{"latest.svg", res.Date + "-" + res.Commit + ".svg"} {
		checkSVG(t, filepath.Join(out, name), targets)
	}
	for _, name := range []string{"latest.md", res.Date + "-" + res.Commit + ".json"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("%s", err)
		}
	}
	// The idle-connection phase: fastgate, nginx and HAProxy, each holding
	// the 50 connections.
	if len(res.Idle) != len(phaseTargets) {
		t.Fatalf("idle connections: %d rows (%+v); want %v", len(res.Idle), res.Idle, phaseTargets)
	}
	for i, ir := range res.Idle {
		if ir.Target != phaseTargets[i] || ir.Conns != 50 || ir.RSSBeforeKB <= 0 || ir.RSSAfterKB <= 0 {
			t.Errorf("idle row %d: %+v; want %s, 50 connections, both resident sizes", i, ir, phaseTargets[i])
		}
	}
	// The slow-clients phase: a row each for fastgate, nginx and HAProxy,
	// every request answered, and fastgate's ratios. (Not the CPU: 300ms
	// of 200 requests/s may take less than the kernel's 10ms tick.)
	sr := res.Slow
	if sr == nil || sr.Clients != 20 || len(sr.Rows) != len(phaseTargets) {
		t.Fatalf("slow clients: %+v; want 20 clients and rows %v", sr, phaseTargets)
	}
	for i, rw := range sr.Rows {
		if rw.Target != phaseTargets[i] || len(rw.Runs) != 1 || rw.Requests == 0 || rw.Errors != 0 ||
			sr.RSSMiB[rw.Target].Median <= 0 {
			t.Errorf("slow clients row %d: %+v, RSS %v; want %s, 1 run, some requests, none failed, a resident size",
				i, rw, sr.RSSMiB[rw.Target], phaseTargets[i])
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "latest.md"))
	requireContains(t, "latest.md", string(md), "| target | requests/s | CPU µs / request | user / kernel µs |", "| fastgate |",
		"| floor-loop (minimal Go epoll proxy, not a gateway) |",
		"**idle keep-alive connections** — 50 client connections", "opened in two halves each left idle 10ms",
		"| target | connections | RSS at half MiB | RSS at all MiB | KB per idle connection |",
		"**slow clients** — 20 keep-alive connections, each sending a GET ~100 B every 100ms",
		"| target | requests/s | CPU µs / request | user / kernel µs | RSS MiB |")
	requireContains(t, "stdout", stdout.String(), "get-small — ", "CPU µs / request", "fastgate", "idle keep-alive connections",
		"slow clients — 20 keep-alive connections")
}

// checkSVG parses the chart and checks it has a bar per row.
func checkSVG(t *testing.T, path string, targets []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	rects := 0
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %s", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			if se.Name.Local == "rect" {
				rects++
			}
		}
	}
	// background + legend (-cores 1) + 2 panels × (rows of get-small + 3
	// feature rows: fastgate, nginx, haproxy)
	want := 1 + len(targetsFor(1)) + 2*(len(targets)+3)
	if root != "svg" || rects != want {
		t.Fatalf("%s: root <%s>, %d rects; want <svg>, %d", path, root, rects, want)
	}
}

// requireProxy returns the path of nginx or haproxy. When it is missing the
// test fails under CI=true, root or not (CI must never pass by skipping; the
// test installs nothing: make deps does, as root), and skips otherwise,
// naming the Debian package to install.
func requireProxy(t *testing.T, name string) string {
	t.Helper()
	if bin := findProxy(name, false, func(string, ...any) {}); bin != "" {
		return bin
	}
	pkgs := aptPackages(name)
	msg := fmt.Sprintf("%s not found in $PATH or /usr/sbin; install the Debian package %s (apt-get install %s, or make deps as root)",
		name, strings.Join(pkgs, " or "), pkgs[0])
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", msg)
	}
	t.Skip(msg)
	return ""
}

func TestParseWrk(t *testing.T) {
	out := `Running 1s test @ http://127.0.0.1:1/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.10ms  300.00us   9.00ms   90.00%
  Latency Distribution
     50%  850.00us
     75%    1.20ms
     90%    1.50ms
     99%    2.50ms
  51234 requests in 1.00s, 9.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  51200.50
Transfer/sec:      9.00MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 51234 || r.RPS != 51200.5 || r.P50 != 0.85 || r.P99 != 2.5 || r.Errors != 7 {
		t.Fatalf("got %+v; want 51234 requests, 51200.5/s, p50 0.85, p99 2.5, 7 errors", r)
	}
	if _, err := parseWrk("garbage"); err == nil {
		t.Fatal("parseWrk(garbage): no error; want one")
	}
}

func TestWorkloadsFile(t *testing.T) {
	ws, err := loadWorkloads("workloads.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, w := range ws {
		names[w.Name] = true
		if _, err := w.scenario("http://127.0.0.1:1", 64, "1s"); err != nil {
			t.Errorf("%s: %s", w.Name, err)
		}
	}
	for _, want := range []string{"get-small", "get-16k", "post-1k", "get-small-close", "fastgate-features", "cache-hit"} {
		if !names[want] {
			t.Errorf("workload %s missing from workloads.json", want)
		}
	}
	if _, err := loadWorkloads("workloads.json", []string{"nope"}); err == nil {
		t.Error("selecting an unknown workload: no error; want one")
	}
}

func TestNiceScale(t *testing.T) {
	f := func(v, top, step float64) {
		t.Helper()
		gt, gs := niceScale(v)
		if gt != top || gs != step {
			t.Fatalf("niceScale(%v) got %v, %v; want %v, %v", v, gt, gs, top, step)
		}
	}
	f(0, 1, 0.25)
	f(13.6, 15, 5)
	f(149890, 150000, 50000)
	f(4, 4, 1)
}

// TestConfigsValid checks the generated nginx and HAProxy configs with the
// proxies' own config checkers (see requireProxy when one is missing).
func TestConfigsValid(t *testing.T) {
	for _, c := range []struct{ name, tmpl, file string }{
		{targetNginx, nginxConfig, "nginx.conf"}, {targetHAProxy, haproxyConfig, "haproxy.cfg"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := requireProxy(t, c.name)
			e := &env{dir: t.TempDir(), upstream: "127.0.0.1:1", conns: 64, gomaxprocs: 2, cores: 2}
			conf, err := render(c.tmpl, e, "127.0.0.1:2")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(conf, "worker_processes 2;") && !strings.Contains(conf, "nbthread 2\n") {
				t.Fatalf("-cores 2: no worker_processes 2 or nbthread 2 in\n%s", conf)
			}
			p := filepath.Join(e.dir, c.file)
			os.WriteFile(p, []byte(conf), 0o644) //nolint:errcheck
			args := []string{"-c", "-f", p}
			if c.name == targetNginx {
				args = []string{"-t", "-p", e.dir, "-c", p, "-e", filepath.Join(e.dir, "err.log")}
			}
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Errorf("%s %v: %s\n%s\n%s", bin, args, err, out, conf)
			}
		})
	}
}

// TestCacheHitTargets starts the cache-hit workload's targets (fastgate
// with cache.yaml, nginx, HAProxy) and checks that each answers repeated
// requests from its cache: X-Cache HIT, and the stub upstream sees one
// request per proxy.
func TestCacheHitTargets(t *testing.T) {
	e, w, targets := startWorkloadTargets(t, "cache-hit")
	before := stubGets(t, e.upstream)
	for _, tg := range targets {
		for i := range 20 {
			code, xc := getXCache(t, tg.url+w.Path)
			if code != 200 || (i > 0 && xc != "HIT") {
				t.Fatalf("%s: GET %s #%d: %d X-Cache %q; want 200 HIT", tg.name, w.Path, i, code, xc)
			}
		}
	}
	if got := stubGets(t, e.upstream) - before; got != 3 {
		t.Fatalf("upstream GETs for 60 requests through 3 caching proxies got %d; want 3", got)
	}
}

// TestFeatureChainTargets checks that the fastgate-features workload runs
// the same chain on its three targets (fastgate with features.yaml, nginx,
// HAProxy): without the API key a 401 that never reaches the upstream;
// with it the upstream gets /users/42, the consumer and its groups, and
// not the key.
func TestFeatureChainTargets(t *testing.T) {
	e, w, targets := startWorkloadTargets(t, "fastgate-features")
	for _, tg := range targets {
		before := stubGets(t, e.upstream)
		if code, _ := echoGet(t, tg.url+w.Path, nil); code != 401 {
			t.Errorf("%s: GET %s without the API key: %d; want 401", tg.name, w.Path, code)
		}
		if got := stubGets(t, e.upstream) - before; got != 0 {
			t.Errorf("%s: the request without the API key reached the upstream (%d GETs)", tg.name, got)
		}
		code, echo := echoGet(t, tg.url+w.Path, w.Headers)
		if code != 200 {
			t.Fatalf("%s: GET %s with the API key: %d; want 200", tg.name, w.Path, code)
		}
		got := map[string]string{}
		for _, kv := range echo.Headers {
			got[strings.ToLower(kv[0])] = kv[1]
		}
		if echo.Path != "/users/42" || got["x-consumer"] != "bench" || got["x-consumer-groups"] != "bench" || got["x-api-key"] != "" {
			t.Errorf("%s: the upstream got path %q, X-Consumer %q, X-Consumer-Groups %q, X-API-Key %q; want /users/42, bench, bench, none",
				tg.name, echo.Path, got["x-consumer"], got["x-consumer-groups"], got["x-api-key"])
		}
	}
}

// echoGet sends a GET with headers and X-Stub-Echo, and returns the status
// and the stub's echo of the request it got.
func echoGet(t *testing.T, url string, headers map[string]string) (int, stubEcho) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("X-Stub-Echo", "1")
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatalf("GET %s: %s", url, err)
	}
	e := stubEcho{respRequestID: string(resp.Header.Peek("X-Request-Id")), respNosniff: string(resp.Header.Peek("X-Content-Type-Options"))}
	if resp.StatusCode() == 200 {
		if err := json.Unmarshal(resp.Body(), &e); err != nil {
			t.Fatalf("GET %s: echo %q: %s", url, resp.Body(), err)
		}
	}
	return resp.StatusCode(), e
}

// stubEcho is the part of the stub's X-Stub-Echo answer the tests read,
// and two headers of the proxy's response.
type stubEcho struct {
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers"`

	respRequestID, respNosniff string
}

// TestSameHeaderWork checks that fastgate, nginx and HAProxy do the same
// header work in each workload's config, what fastgate does by default:
// the upstream gets X-Forwarded-For, X-Real-IP, X-Forwarded-Proto: http,
// X-Forwarded-Host and a request ID, and the client gets that ID back with
// X-Content-Type-Options: nosniff, from the cache too.
func TestSameHeaderWork(t *testing.T) {
	for _, name := range []string{"get-small", "fastgate-features", "cache-hit"} {
		_, w, targets := startWorkloadTargets(t, name)
		for _, tg := range targets {
			for i := range 2 { // a miss, then a hit on cache-hit
				code, echo := echoGet(t, tg.url+w.Path, w.Headers)
				if code != 200 {
					t.Fatalf("%s, %s: GET %s: %d", name, tg.name, w.Path, code)
				}
				if echo.respRequestID == "" || echo.respNosniff != "nosniff" {
					t.Errorf("%s, %s: the response has X-Request-Id %q, X-Content-Type-Options %q; want an ID, nosniff",
						name, tg.name, echo.respRequestID, echo.respNosniff)
				}
				if name == "cache-hit" && i > 0 {
					continue // from the cache: the upstream's echo is the first request's
				}
				got := map[string]string{}
				for _, kv := range echo.Headers {
					got[strings.ToLower(kv[0])] = kv[1]
				}
				for _, h := range []string{"x-forwarded-for", "x-real-ip", "x-forwarded-host", "x-request-id"} {
					if got[h] == "" {
						t.Errorf("%s, %s: the upstream got no %s", name, tg.name, h)
					}
				}
				if got["x-forwarded-proto"] != "http" {
					t.Errorf("%s, %s: the upstream got X-Forwarded-Proto %q; want http", name, tg.name, got["x-forwarded-proto"])
				}
				if got["x-request-id"] != echo.respRequestID {
					t.Errorf("%s, %s: the upstream got request ID %q, the client %q; want the same", name, tg.name, got["x-request-id"], echo.respRequestID)
				}
			}
		}
	}
}

// startWorkloadTargets starts the stub upstream and the named workload's
// fastgate (with its config), nginx and HAProxy, all stopped when the test
// ends; it skips under -short.
func startWorkloadTargets(t *testing.T, name string) (*env, *workload, []*target) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: runs real processes")
	}
	nginx, haproxy := requireProxy(t, targetNginx), requireProxy(t, targetHAProxy)
	ws, err := loadWorkloads("workloads.json", []string{name})
	if err != nil {
		t.Fatal(err)
	}
	w := &ws[0]
	e := &env{dir: t.TempDir(), bin: testBin(t), conns: 4, gomaxprocs: 1}
	up, err := e.startUpstream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Stop(5 * time.Second) }) //nolint:errcheck
	var targets []*target
	for _, start := range []func() (*target, error){
		func() (*target, error) { return e.startFastgate(targetFastgate, w.fastgateTmpl, false) },
		func() (*target, error) { return e.startNginx(nginx) },
		func() (*target, error) { return e.startHAProxy(haproxy) },
	} {
		tg, err := start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tg.stop)
		targets = append(targets, tg)
	}
	return e, w, targets
}

func getXCache(t *testing.T, url string) (int, string) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatalf("GET %s: %s", url, err)
	}
	return resp.StatusCode(), string(resp.Header.Peek("X-Cache"))
}

// stubGets returns the stub upstream's GET count.
func stubGets(t *testing.T, addr string) int64 {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/_stub/stats")
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatalf("stub stats: %s", err)
	}
	var s struct {
		Get int64 `json:"get"`
	}
	if err := json.Unmarshal(resp.Body(), &s); err != nil {
		t.Fatalf("stub stats %q: %s", resp.Body(), err)
	}
	return s.Get
}

// TestParsePerfCSV reads perf stat -x, output into syscalls per request,
// grouping the calls of Go, nginx and HAProxy alike.
func TestParsePerfCSV(t *testing.T) {
	out := `# started on Sun Dec  6 20:00:00 2026

5000,,raw_syscalls:sys_enter,3000000,100.00,,
2000,,syscalls:sys_enter_read,3000000,100.00,,
1000,,syscalls:sys_enter_recvfrom,3000000,100.00,,
<not counted>,,syscalls:sys_enter_recvmsg,0,100.00,,
1500,,syscalls:sys_enter_writev,3000000,100.00,,
500,,syscalls:sys_enter_write,3000000,100.00,,
200,,syscalls:sys_enter_epoll_pwait,3000000,100.00,,
100,,syscalls:sys_enter_futex,3000000,100.00,,
`
	counts, err := parsePerfCSV(out)
	if err != nil {
		t.Fatal(err)
	}
	got := *perRequest(counts, 1000)
	want := syscallCounts{Requests: 1000, Total: 5, Read: 3, Write: 2, EpollWait: 0.2, Futex: 0.1}
	want.Other = 0 // 5 - 3 - 2 - 0.2 - 0.1 < 0: clamped
	if got != want {
		t.Fatalf("got %+v; want %+v", got, want)
	}
	if _, err := parsePerfCSV("<not counted>,,raw_syscalls:sys_enter,0,0,,\n"); err == nil {
		t.Fatal("no total counted: want an error")
	}
}

// TestTargetsFlag checks the targets of -cores 1 and 2: fastgate-reuseport
// only with more than one core.
func TestTargetsFlag(t *testing.T) {
	f := func(args []string, want string) {
		t.Helper()
		c, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatalf("parseFlags(%q): %s", args, err)
		}
		if c.targets != want {
			t.Fatalf("parseFlags(%q) targets got %q; want %q", args, c.targets, want)
		}
	}
	f(nil, "direct,fastgate,nginx,haproxy")
	f([]string{"-cores", "2"}, "direct,fastgate,fastgate-reuseport,nginx,haproxy")
	f([]string{"-cores", "2", "-targets", "fastgate,fastgate-reuseport"}, "fastgate,fastgate-reuseport")

	bad := func(args []string, want string) {
		t.Helper()
		_, err := parseFlags(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("parseFlags(%q) error got %v; want one containing %q", args, err, want)
		}
	}
	f([]string{"-targets", "fastgate,floor-loop,floor-goroutine"}, "fastgate,floor-loop,floor-goroutine")
	bad([]string{"-targets", "fastgate-reuseport"}, "needs -cores 2 or more")
	bad([]string{"-cores", "2", "-targets", "fastgate,envoy"}, `unknown target "envoy"`)
}

// TestReuseportResults checks the fastgate-reuseport row of the tables
// and chart of a -cores 2 run, and that -cores 1 has none of it.
func TestReuseportResults(t *testing.T) {
	mk := func(cores int, targets ...string) *results {
		r := &results{Settings: settings{Repeat: 1, Cores: cores, GOMAXPROCS: cores}}
		wr := r.workload(&workload{Name: "get-small", Description: "GET"})
		for i, tg := range targets {
			wr.row(tg).Runs = []run{{Requests: 1000, RPS: float64(1000 * (i + 1)), CPUPerReq: 10}}
		}
		r.finish()
		return r
	}
	r := mk(2, targetFastgate, targetReuseport, targetNginx)
	md := r.markdown()
	requireContains(t, "-cores 2 markdown", md, "| fastgate-reuseport (2 × GOMAXPROCS=1) | 2,000 | 10.0 |",
		"fastgate-reuseport is 2 fastgate processes with GOMAXPROCS=1",
		"- fastgate / nginx: CPU µs per request ×1.00, requests/s ×0.33",
		"- fastgate-reuseport / nginx: CPU µs per request ×1.00, requests/s ×0.67")
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(js, []byte(`"reuseport_ratios":{"nginx":`)) {
		t.Errorf("-cores 2 JSON lacks reuseport_ratios: %s", js)
	}
	if svg := string(r.svg()); !strings.Contains(svg, ">fastgate-reuseport</text>") || !strings.Contains(svg, targetColors[targetReuseport]) {
		t.Errorf("-cores 2 chart lacks the fastgate-reuseport legend or bar:\n%s", svg)
	}

	r = mk(1, targetFastgate, targetNginx)
	js, err = json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{r.markdown(), string(r.svg()), string(js)} {
		if strings.Contains(out, "reuseport") {
			t.Errorf("-cores 1 output mentions reuseport:\n%s", out)
		}
	}
}

// TestListens checks the listening-socket probe of fastgate-reuseport's
// start on a socket of this process.
func TestListens(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	f := func(port string, want bool) {
		t.Helper()
		got, err := listens(os.Getpid(), port)
		if err != nil || got != want {
			t.Fatalf("listens(self, %s) got %v, %v; want %v, nil", port, got, err, want)
		}
	}
	f(port, true)
	ln.Close()
	f(port, false)
}

// TestReuseportTarget starts fastgate-reuseport with -cores 2 and checks
// that both processes listen on the one port, that it proxies, and that
// its CPU time and pids cover both.
func TestReuseportTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs real processes")
	}
	e := &env{dir: t.TempDir(), bin: testBin(t), conns: 4, gomaxprocs: 2, cores: 2}
	up, err := e.startUpstream()
	if err != nil {
		t.Fatal(err)
	}
	defer up.Stop(5 * time.Second) //nolint:errcheck
	tg, err := e.startFastgate(targetReuseport, "", true)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.stop()
	if len(tg.procs) != 2 || len(tg.pids()) != 2 {
		t.Fatalf("%d processes, pids %v; want 2", len(tg.procs), tg.pids())
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(tg.url, "http://"))
	for _, p := range tg.procs {
		if ok, err := listens(p.Pid(), port); !ok || err != nil {
			t.Errorf("%s (pid %d) listens on %s got %v, %v; want true", p.Name, p.Pid(), port, ok, err)
		}
	}
	for i := range 20 {
		if code, _ := getXCache(t, tg.url+"/bench/small"); code != 200 {
			t.Fatalf("GET #%d through %s: status %d; want 200", i, tg.name, code)
		}
	}
	if _, err := tg.cpuTime(); err != nil {
		t.Fatal(err)
	}
}

// TestBenchOpenModel runs the harness on fastgate alone with the
// open-model phase (1s per run, 1 repeat) and checks that the phase is
// driven at -open-load times the closed-model requests/s, that every
// scheduled arrival was sent or counted as dropped, and that the second
// table is printed and written; never the speed.
func TestBenchOpenModel(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the bench harness runs real processes")
	}
	out, stdout, res, _ := runBench(t, "-only", "get-small", "-targets", targetFastgate,
		"-open-workloads", "get-small", "-syscalls=false")
	wr := res.Workloads[0]
	o := wr.Open
	if o == nil || len(o.Rows) != 1 || o.Rows[0].Target != targetFastgate {
		t.Fatalf("get-small open phase %+v; want one fastgate row", o)
	}
	want, _ := openRate(0.4, wr.find(targetFastgate).Runs)
	if o.Load != 0.4 || o.OfferedRPS != want || want <= 0 || res.Settings.OpenLoad != 0.4 || o.MaxVUs != 2000 {
		t.Errorf("open load %v, offered %v, settings %v, max VUs %d; want 0.4, %v (0.4 × fastgate's closed req/s %v), 2000",
			o.Load, o.OfferedRPS, res.Settings.OpenLoad, o.MaxVUs, want, wr.RPS())
	}
	rw := o.Rows[0]
	if len(rw.Runs) != 1 || rw.P99.Median <= 0 || rw.CPUPerReq.Median <= 0 || rw.SendLagP99 == nil || rw.Runs[0].VUs < 64 {
		t.Errorf("open row %+v; want 1 run, positive p99 and CPU, a send lag, at least 64 VUs", rw)
	}
	// 1s at an integer rate schedules exactly that many arrivals.
	if got := rw.Requests + rw.Dropped; got != uint64(o.OfferedRPS) || rw.Runs[0].OfferedRPS != o.OfferedRPS {
		t.Errorf("open row: %d requests + %d dropped, run offered %v; want %v arrivals in 1s",
			rw.Requests, rw.Dropped, rw.Runs[0].OfferedRPS, o.OfferedRPS)
	}
	md, _ := os.ReadFile(filepath.Join(out, "latest.md"))
	requireContains(t, "latest.md", string(md), "% of fastgate's saturation", "| target | offered req/s | achieved req/s |")
	if !strings.Contains(stdout.String(), "get-small at "+fmtNum(o.OfferedRPS, 0)+" req/s offered (40% of fastgate's saturation") {
		t.Errorf("stdout lacks the open-model table:\n%s", stdout.String())
	}
}

// RPS returns the median requests/s of the workload's fastgate row, for
// failure messages.
func (wr *workloadResult) RPS() float64 {
	if fg := wr.find(targetFastgate); fg != nil {
		return fg.RPS.Median
	}
	return 0
}

func TestOpenRate(t *testing.T) {
	f := func(load float64, rps []float64, wantRate, wantSat float64) {
		t.Helper()
		runs := make([]run, len(rps))
		for i, v := range rps {
			runs[i].RPS = v
		}
		rate, sat := openRate(load, runs)
		if rate != wantRate || sat != wantSat {
			t.Fatalf("openRate(%v, %v) got %v, %v; want %v, %v", load, rps, rate, sat, wantRate, wantSat)
		}
	}
	f(0.7, []float64{18000, 20000, 19000}, 13300, 19000) // median, not mean or last
	f(0.7, []float64{18000, 20000}, 13300, 19000)        // even count: mean of the middle two
	f(0.7, []float64{18751.4}, 13126, 18751.4)           // whole requests per second
	f(1, []float64{1000}, 1000, 1000)
	f(0, []float64{18000}, 0, 18000) // -open-load 0: no phase
	f(0.7, nil, 0, 0)                // no fastgate runs: no phase
}

// TestCloseWorkload runs get-small-close, a new client connection per
// request, through fastgate and nginx: every request answered, none failed.
func TestCloseWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the bench harness runs real processes")
	}
	requireProxy(t, targetNginx)
	targets := []string{targetFastgate, targetNginx}
	_, _, res, _ := runBench(t, "-only", "get-small-close", "-open-load", "0", "-syscalls=false",
		"-targets", strings.Join(targets, ","))
	if len(res.Workloads) != 1 || len(res.Workloads[0].Rows) != len(targets) {
		t.Fatalf("workloads %+v; want get-small-close with rows %v", res.Workloads, targets)
	}
	for _, rw := range res.Workloads[0].Rows {
		if rw.Requests == 0 || rw.Errors != 0 {
			t.Errorf("row %s: %d requests, %d errors; want some and none", rw.Target, rw.Requests, rw.Errors)
		}
	}
}

func TestOpenScenario(t *testing.T) {
	ws, err := loadWorkloads("workloads.json", []string{"post-1k"})
	if err != nil {
		t.Fatal(err)
	}
	f := func(vus, maxVUs, wantMax int) {
		t.Helper()
		b, err := ws[0].openScenario("http://127.0.0.1:1", 13126, vus, maxVUs, "2s")
		if err != nil {
			t.Fatal(err)
		}
		sc, err := loadtest.Parse(b)
		if err != nil {
			t.Fatalf("loadgen rejects the open scenario %s: %s", b, err)
		}
		if sc.Executor != loadtest.ConstantArrivalRate || sc.Rate != 13126 || sc.Duration.D() != 2*time.Second ||
			sc.PreAllocatedVUs != vus || sc.MaxVUs() != wantMax || sc.BodySize != 1024 || sc.Method != "POST" {
			t.Fatalf("open scenario %+v; want constant-arrival-rate 13126/s for 2s, %d..%d VUs, POST 1 KiB", sc, vus, wantMax)
		}
	}
	f(64, 2000, 2000)
	f(64, 10, 64) // never fewer than the pre-allocated VUs
}

func TestOpenFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil || c.openLoad != 0.4 || c.openWorkloads != "" || c.openMaxVUs != 2000 {
		t.Fatalf("defaults: -open-load %v, -open-workloads %q, -open-max-vus %d, %v; want 0.4, empty, 2000",
			c.openLoad, c.openWorkloads, c.openMaxVUs, err)
	}
	bad := func(args []string, want string) {
		t.Helper()
		if _, err := parseFlags(args, io.Discard); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseFlags(%q) error got %v; want one containing %q", args, err, want)
		}
	}
	bad([]string{"-open-load", "-0.1"}, "0..1")
	bad([]string{"-open-load", "1.5"}, "0..1")
	bad([]string{"-open-max-vus", "10"}, "want -conns (64) to 10000")
	bad([]string{"-open-max-vus", "20000"}, "want -conns (64) to 10000")
	bad([]string{"-idle-conns", "-1"}, "-idle-conns -1: want 0 (no phase) to 3000")
	bad([]string{"-idle-conns", "5000"}, "-idle-conns 5000: want 0 (no phase) to 3000")
	bad([]string{"-slow-clients", "5000"}, "-slow-clients 5000: want 0 (no phase) to 3000")
	bad([]string{"-slow-every", "0s"}, "want positive durations")
	bad([]string{"-slow-every", "2m"}, "-slow-every at most 1m")
	if c.idleConns != 2000 || c.slowClients != 1000 || c.slowEvery != 2500*time.Millisecond || c.slowTime != 8*time.Second {
		t.Errorf("defaults: -idle-conns %d, -slow-clients %d, -slow-every %s, -slow-time %s; want 2000, 1000, 2.5s, 8s",
			c.idleConns, c.slowClients, c.slowEvery, c.slowTime)
	}
	b := &bench{cfg: &config{openLoad: 0.7}}
	f := func(openWorkloads, name string, names []string, want bool) {
		t.Helper()
		b.cfg.openWorkloads = openWorkloads
		if got := b.openWanted(&workload{Name: name}, names); got != want {
			t.Fatalf("-open-workloads %q: openWanted(%s, %v) got %v; want %v", openWorkloads, name, names, got, want)
		}
	}
	f("", "get-small", []string{targetDirect, targetFastgate, targetNginx, targetHAProxy}, true)
	f("", "get-small", []string{targetFastgate, targetHAProxy}, true)
	f("", "fastgate-features", []string{targetFastgate}, false) // nothing to compare with
	f("fastgate-features", "fastgate-features", []string{targetFastgate}, true)
	f("get-16k", "get-small", []string{targetFastgate, targetNginx}, false)
	b.cfg.openLoad = 0
	f("", "get-small", []string{targetFastgate, targetNginx}, false)
}

// TestRatiosByRound checks the ratios of runs paired by round beside the
// ratio of the medians: one line, and the JSON.
func TestRatiosByRound(t *testing.T) {
	r := &results{Settings: settings{Repeat: 3, Cores: 1, GOMAXPROCS: 1}}
	wr := r.workload(&workload{Name: "get-small", Description: "GET"})
	cpu := func(v ...float64) []run {
		runs := make([]run, len(v))
		for i, x := range v {
			runs[i] = run{Requests: 1000, RPS: 1000, CPUPerReq: x}
		}
		return runs
	}
	wr.row(targetFastgate).Runs = cpu(20, 22, 19)
	wr.row(targetNginx).Runs = cpu(21, 21, 20) // rounds: 0.95, 1.05, 0.95
	wr.row(targetHAProxy).Runs = cpu(18)       // one round: no pairs
	r.finish()
	requireContains(t, "markdown", r.markdown(),
		"- fastgate / nginx: CPU µs per request ×0.95, requests/s ×1.00; round by round ×0.95 (0.95–1.05), lower in 2 of 3\n",
		"- fastgate / haproxy: CPU µs per request ×1.11, requests/s ×1.00\n")
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	requireContains(t, "JSON", string(js), `"nginx":{"cpu_us_per_req":0.9523809523809523,"rps":1,"cpu_by_round":{"median":0.9523809523809523,"min":0.95,"max":1.0476190476190477,"lower":2,"of":3}}`)
	if strings.Contains(string(js), `"haproxy":{"cpu_us_per_req":1.1111111111111112,"rps":1,"cpu_by_round"`) {
		t.Errorf("JSON pairs rounds with a row of one run: %s", js)
	}
}

// TestOpenResults checks the open-model table, ratio lines and JSON of a
// workload, and that a run without the phase has none of it.
func TestOpenResults(t *testing.T) {
	r := &results{Settings: settings{Repeat: 3, Cores: 1, GOMAXPROCS: 1, OpenLoad: 0.7, OpenGenerator: "loadgen constant-arrival-rate"}}
	wr := r.workload(&workload{Name: "get-small", Description: "GET"})
	for _, tg := range []string{targetDirect, targetFastgate, targetHAProxy} {
		wr.row(tg).Runs = []run{{Requests: 20000, RPS: 20000, CPUPerReq: 40, P99: 8}}
	}
	o := wr.openPhase(0.7, 20000, 14000)
	o.MaxVUs = 2000
	open := func(p99 []float64, dropped uint64) []run {
		runs := make([]run, len(p99))
		for i, v := range p99 {
			runs[i] = run{Requests: 14000, Errors: 1, RPS: 13990, OfferedRPS: 14000, P50: 0.4, P99: v, P999: 3,
				CPUPerReq: 42, Dropped: dropped, SendLagP99: 0.25, VUs: 64}
		}
		return runs
	}
	o.row(targetFastgate).Runs = open([]float64{1.25, 1.5, 2}, 0) // send lag 17% of p99: no warning
	o.row(targetNginx).Runs = open([]float64{0.5}, 0)             // send lag half the p99: the generator's tail
	o.row(targetHAProxy).Runs = open([]float64{0.5, 0.75, 1}, 2)  // dropped arrivals
	r.finish()

	md := r.markdown()
	requireContains(t, "markdown", md, "**get-small** at 14,000 req/s offered (70% of fastgate's saturation, 20,000 req/s) — open model",
		"| target | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | errors | dropped | CPU µs / request | send lag p99 ms |",
		"| fastgate | 14,000 | 13,990 | 0.40 | 1.50 (1.25–2.00) | 3.00 | 3 | 0 | 42.0 | 0.25 |",
		"| haproxy | 14,000 | 13,990 | 0.40 | 0.75 (0.50–1.00) | 3.00 | 3 | 6 | 42.0 | 0.25 |",
		"- fastgate p99 / nginx p99: ×3.00 (not the proxies' alone: see the warnings)",
		"- fastgate p99 / haproxy p99: ×2.00; round by round ×2.00 (2.00–2.50), lower in 0 of 3 (not the proxies' alone: see the warnings)",
		"- warning: nginx: loadgen's own send lag p99 0.25 ms is 50% of the p99: the generator, not the proxy, sets this tail",
		"- warning: haproxy: 6 arrivals dropped, all 2000 VUs busy (loadgen's send lag p99 0.25 ms): the percentiles leave them out;",
		"70% of fastgate's median requests/s in the first (open model: loadgen constant-arrival-rate)")
	if strings.Contains(md, "| direct (upstream CPU) | 14,000") || strings.Contains(md, "warning: fastgate") {
		t.Errorf("markdown has an open row of direct, which did not run in the open model, or a warning for fastgate, whose run was clean:\n%s", md)
	}
	var stdout bytes.Buffer
	r.printTables(&stdout)
	requireContains(t, "printed tables", stdout.String(), "get-small at 14,000 req/s offered (70% of fastgate's saturation, 20,000 req/s)",
		"  fastgate p99 / haproxy p99: ×2.00", "open model: loadgen constant-arrival-rate")
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	requireContains(t, "JSON", string(js), `"open":{"load":0.7,"fastgate_saturation_rps":20000,"offered_rps":14000,`,
		`"p99_ratios":{"haproxy":2,"nginx":3}`, `"p99_by_round":{"haproxy":{"median":2,"min":2,"max":2.5,"lower":0,"of":3}}`,
		`"dropped":6,"send_lag_p99_ms":{"median":0.25`)

	wr.Open = nil
	r.Settings.OpenLoad, r.Settings.OpenGenerator = 0, ""
	r.finish()
	js, err = json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	md = r.markdown()
	for _, out := range []string{md, string(js)} {
		for _, no := range []string{"open", "offered", "dropped", "send_lag"} {
			if strings.Contains(out, no) {
				t.Errorf("without the open-model phase the output mentions %q:\n%s", no, out)
			}
		}
	}
}

// runBench runs the harness with 1s runs, 1 repeat, no wrk and no
// installs, plus args, and returns its output directory, stdout and
// latest.json (decoded and raw).
func runBench(t *testing.T, args ...string) (out string, stdout *bytes.Buffer, res results, raw []byte) {
	t.Helper()
	out = t.TempDir()
	stdout = new(bytes.Buffer)
	var stderr bytes.Buffer
	base := []string{"-bin", testBin(t), "-time", "1s", "-repeat", "1", "-workloads", "workloads.json",
		"-out", out, "-wrk=false", "-install=false", "-idle-conns", "0", "-slow-clients", "0"}
	if code := runMain(append(base, args...), stdout, &stderr); code != 0 {
		t.Fatalf("bench exit code %d; stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	raw, err := os.ReadFile(filepath.Join(out, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("latest.json: %s", err)
	}
	return out, stdout, res, raw
}

// requireContains reports each of wants that text (named what) lacks.
func requireContains(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, text)
		}
	}
}
