package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-json"
)

// admin sends method path to g's admin API with an optional bearer token.
func (g *gateway) admin(t *testing.T, method, path, token string) *response {
	t.Helper()
	if g.adminAddr == "" {
		t.Fatal("gateway has no harness-managed admin address")
	}
	req, err := http.NewRequest(method, "http://"+g.adminAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %s; stderr:\n%s", method, path, err, g.stderr.String())
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: []byte(b.String())}
}

// metric returns the value of the series named exactly series ("name{labels}")
// in g's /metrics, or -1 when absent.
func (g *gateway) metric(t *testing.T, series string) float64 {
	t.Helper()
	body := string(g.admin(t, "GET", "/metrics", "").body)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q is not a number", series, v)
			}
			return f
		}
	}
	return -1
}

// rewrite replaces g's config file (keeping the harness's listen and admin
// lines) with body.
func (g *gateway) rewrite(t *testing.T, body string, ups ...*upstream) {
	t.Helper()
	old, err := os.ReadFile(g.configPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(old), "\n", 3)
	head := lines[0] + "\n"
	if g.adminAddr != "" {
		head += lines[1] + "\n"
	}
	tmp := writeConfig(t, head+body, ups...)
	data, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	// Write to a temp file and rename, as editors and config management do,
	// so the watcher never reads half a file.
	if err := os.WriteFile(g.configPath+".tmp", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(g.configPath+".tmp", g.configPath); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(pollInterval)
	}
}

// reloadConfig is the config after reload i: a base route, plus routes
// r0..ri on upstream b, and route "moving" whose rewrite changes each time.
func reloadConfig(i int) string {
	var b strings.Builder
	b.WriteString(`
upstreams:
  a: {targets: [{url: "{{a}}"}]}
  b: {targets: [{url: "{{b}}"}]}
routes:
  - {name: base, match: {path: "/base/{rest:*}"}, upstream: a}
`)
	fmt.Fprintf(&b, "  - {name: moving, match: {path: \"/moving\"}, upstream: b, rewrite: {path: \"/v%d\"}}\n", i)
	for j := 0; j <= i; j++ {
		fmt.Fprintf(&b, "  - {name: r%d, match: {path: \"/r%d\"}, upstream: b}\n", j, j)
	}
	return b.String()
}

// TestReloadUnderLoad reloads 20 times, alternating SIGHUP, POST /reload and
// file edits, each adding a route and changing another, while a bounded load
// runs: no request fails and every new route answers.
func TestReloadUnderLoad(t *testing.T) {
	a := startUpstream(t, "a")
	b := startUpstream(t, "b", "-echo")
	g := startGateway(t, reloadConfig(-1)[:strings.Index(reloadConfig(-1), "  - {name: moving")], a, b)

	// The load runs until the reloads are done, bounded in count.
	const workers, perWorker = 4, 25000
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newClient()
			defer client.CloseIdleConnections()
			lg := &gateway{addr: g.addr, client: client}
			for i := 0; i < perWorker; i++ {
				select {
				case <-stop:
					return
				default:
				}
				r, err := lg.try("GET", fmt.Sprintf("/base/w%d/%d", w, i), "")
				sent.Add(1)
				if err == nil && r.status != 200 {
					err = fmt.Errorf("GET /base: status %d: %s", r.status, r.body)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}

	for i := 0; i < 20; i++ {
		g.rewrite(t, reloadConfig(i), a, b)
		switch i % 3 {
		case 0:
			g.cmd.Process.Signal(syscall.SIGHUP) //nolint:errcheck
		case 1:
			if r := g.admin(t, "POST", "/reload", ""); r.status != 200 {
				t.Fatalf("reload %d: POST /reload status %d: %s", i, r.status, r.body)
			}
		case 2:
			// the file watcher picks the edit up
		}
		path := fmt.Sprintf("/r%d", i)
		waitFor(t, fmt.Sprintf("reload %d: route %s answering", i, path), 10*time.Second, func() bool {
			r, err := g.try("GET", path, "")
			return err == nil && r.status == 200
		})
		e := mustEcho(t, g.get(t, "/moving"))
		if want := fmt.Sprintf("/v%d", i); e.Path != want {
			t.Fatalf("reload %d: changed route sent path %q; want %q", i, e.Path, want)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	if sent.Load() < 2000 {
		t.Fatalf("only %d requests ran during the reloads; want at least 2000", sent.Load())
	}
	if n := g.metric(t, `fastgate_config_reloads_total{result="ok"}`); n < 20 {
		t.Fatalf("fastgate_config_reloads_total{result=\"ok\"}: got %v; want >= 20", n)
	}
	if n := g.metric(t, `fastgate_config_reloads_total{result="error"}`); n != 0 {
		t.Fatalf("fastgate_config_reloads_total{result=\"error\"}: got %v; want 0", n)
	}
	t.Logf("%d requests, 0 failed, across 20 reloads", sent.Load())
}

// TestReloadRejectsInvalid sends an invalid config by each reload path: it
// is rejected with its reasons and the old config keeps serving.
func TestReloadRejectsInvalid(t *testing.T) {
	a := startUpstream(t, "a")
	good := `
upstreams:
  a: {targets: [{url: "{{a}}"}]}
routes:
  - {name: base, match: {path: "/base"}, upstream: a}
`
	bad := good + `  - {name: broken, match: {path: "/broken"}, upstream: nope}
  - {name: base, match: {path: "/other"}, upstream: a, timeout: fast}
`
	g := startGateway(t, good, a)
	wantProblems := []string{
		`routes[1].upstream: unknown upstream`,
		`routes[2].timeout: invalid duration`,
	}
	errors := 0.0
	for _, path := range []string{"signal", "admin", "file"} {
		g.rewrite(t, bad, a)
		switch path {
		case "signal":
			g.cmd.Process.Signal(syscall.SIGHUP) //nolint:errcheck
		case "admin":
			r := g.admin(t, "POST", "/reload", "")
			if r.status != 400 {
				t.Fatalf("POST /reload of a bad config: status %d; want 400: %s", r.status, r.body)
			}
			var body struct {
				Error    string   `json:"error"`
				Problems []string `json:"problems"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("POST /reload body %s: %s", r.body, err)
			}
			for _, w := range wantProblems {
				if !containsPrefix(body.Problems, w) {
					t.Fatalf("POST /reload problems %q lack %q", body.Problems, w)
				}
			}
		}
		errors++
		waitFor(t, path+": the rejection counted", 10*time.Second, func() bool {
			return g.metric(t, `fastgate_config_reloads_total{result="error"}`) >= errors
		})
		for _, w := range wantProblems {
			if !strings.Contains(g.stderr.String(), w) {
				t.Fatalf("%s: log lacks %q:\n%s", path, w, g.stderr.String())
			}
		}
		if r := g.get(t, "/base"); r.status != 200 {
			t.Fatalf("%s: old route after a rejected reload: status %d", path, r.status)
		}
		if r := g.get(t, "/broken"); r.status != 404 {
			t.Fatalf("%s: route of the rejected config answers %d; want 404", path, r.status)
		}
		// Put the good config back before the next path, so each rejection
		// is its own event.
		g.rewrite(t, good+"  - {name: fixed, match: {path: \"/fixed-"+path+"\"}, upstream: a}\n", a)
		g.cmd.Process.Signal(syscall.SIGHUP) //nolint:errcheck
		waitFor(t, path+": the fixed config applied", 10*time.Second, func() bool {
			r, err := g.try("GET", "/fixed-"+path, "")
			return err == nil && r.status == 200
		})
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestDrainUnderLoad sends SIGTERM while requests are in flight: /readyz
// turns 503 at once, every accepted request completes, and the process
// exits 0 within the drain timeout.
func TestDrainUnderLoad(t *testing.T) {
	slow := startUpstream(t, "slow", "-latency", "700ms")
	g := startGatewayArgs(t, `
server: {drain_timeout: 5s}
upstreams:
  slow: {targets: [{url: "{{slow}}"}]}
routes:
  - {name: slow, match: {path: "/slow"}, upstream: slow}
`, []string{"-drain-delay", "300ms"}, slow)
	const n = 40
	results := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			// One connection per request, so each is accepted on its own.
			client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Get("http://" + g.addr + "/slow")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			results <- err
		}()
	}
	waitFor(t, "40 requests in flight", 10*time.Second, func() bool {
		return g.metric(t, "fastgate_inflight_requests") == n
	})
	start := time.Now()
	g.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck
	waitFor(t, "/readyz 503 while draining", 2*time.Second, func() bool {
		return g.admin(t, "GET", "/readyz", "").status == 503
	})
	for i := 0; i < n; i++ {
		if err := <-results; err != nil {
			t.Fatalf("an accepted request failed during the drain: %s; stderr:\n%s", err, g.stderr.String())
		}
	}
	code := g.wait(10 * time.Second)
	took := time.Since(start)
	if code != 0 {
		t.Fatalf("exit code after SIGTERM: %d; want 0; stderr:\n%s", code, g.stderr.String())
	}
	if took > 5*time.Second+time.Second {
		t.Fatalf("exit took %s; want within the 5s drain timeout", took)
	}
	t.Logf("%d in-flight requests completed; exited 0 after %s", n, took.Round(time.Millisecond))
}

// TestMetricsExact checks that /metrics counts exactly the requests sent,
// per route, method and code, with le buckets.
func TestMetricsExact(t *testing.T) {
	u := startUpstream(t, "users")
	g := startGateway(t, `
upstreams:
  users: {targets: [{url: "{{users}}"}]}
routes:
  - {name: users, match: {path: "/users/{id}", methods: [GET]}, upstream: users}
`, u)
	send := func(n int, method, path string, want int, headers ...string) {
		for i := 0; i < n; i++ {
			if r := g.do(t, method, path, "", headers...); r.status != want {
				t.Fatalf("%s %s: status %d; want %d", method, path, r.status, want)
			}
		}
	}
	send(30, "GET", "/users/1", 200)
	send(11, "GET", "/users/2", 500, "X-Stub-Status: 500")
	send(7, "GET", "/missing", 404)
	send(5, "POST", "/users/1", 405)
	f := func(series string, want float64) {
		t.Helper()
		if got := g.metric(t, series); got != want {
			t.Fatalf("%s: got %v; want %v", series, got, want)
		}
	}
	target := `upstream="users",target="` + u.addr + `"`
	f(`fastgate_requests_total{route="users",code="200",method="GET"}`, 30)
	f(`fastgate_requests_total{route="users",code="500",method="GET"}`, 11)
	f(`fastgate_requests_total{route="_unmatched",code="404",method="GET"}`, 7)
	f(`fastgate_requests_total{route="_unmatched",code="405",method="POST"}`, 5)
	f(`fastgate_upstream_requests_total{`+target+`,code="200"}`, 30)
	f(`fastgate_upstream_requests_total{`+target+`,code="500"}`, 11)
	f(`fastgate_request_duration_seconds_count{route="users"}`, 41)
	f(`fastgate_request_duration_seconds_bucket{route="users",le="+Inf"}`, 41)
	f(`fastgate_upstream_duration_seconds_count{upstream="users"}`, 41)
	f(`fastgate_inflight_requests`, 0)
	body := string(g.admin(t, "GET", "/metrics", "").body)
	// Every bucket of the route's histogram is there, cumulative.
	re := regexp.MustCompile(`fastgate_request_duration_seconds_bucket\{route="users",le="([^"]+)"\} (\d+)`)
	buckets := re.FindAllStringSubmatch(body, -1)
	if len(buckets) < 10 {
		t.Fatalf("le buckets of route users: got %d; want the whole ladder:\n%s", len(buckets), body)
	}
	prev := 0
	for _, b := range buckets {
		n, _ := strconv.Atoi(b[2])
		if n < prev {
			t.Fatalf("bucket le=%s has %d < %d of the previous: not cumulative", b[1], n, prev)
		}
		prev = n
	}
	for _, want := range []string{"process_resident_memory_bytes", "go_goroutines", "# TYPE fastgate_requests_total counter"} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, `/users/1`) {
		t.Fatal("/metrics contains a raw path; labels must be route names")
	}
}

// TestAdminAPI checks the token, the redacted config and the upstream list.
func TestAdminAPI(t *testing.T) {
	u := startUpstream(t, "users")
	adminAddr := freePort(t)
	g := startGateway(t, `
admin: {listen: "`+adminAddr+`", token: "${ADMIN_TOKEN_FOR_TEST:-s3cret-token}"}
upstreams:
  users: {targets: [{url: "{{users}}"}]}
routes:
  - {name: users, match: {path: "/users/{id}"}, upstream: users}
`, u)
	g.adminAddr = adminAddr
	f := func(method, path, token string, want int, contains ...string) {
		t.Helper()
		r := g.admin(t, method, path, token)
		if r.status != want {
			t.Fatalf("%s %s (token %q): status %d; want %d: %s", method, path, token, r.status, want, r.body)
		}
		for _, c := range contains {
			if !strings.Contains(string(r.body), c) {
				t.Fatalf("%s %s: body lacks %q:\n%s", method, path, c, r.body)
			}
		}
		if strings.Contains(string(r.body), "s3cret-token") {
			t.Fatalf("%s %s leaks the admin token:\n%s", method, path, r.body)
		}
	}
	f("GET", "/healthz", "", 200, `"ok"`)
	f("GET", "/readyz", "", 200, `"ready"`)
	f("GET", "/metrics", "", 200, "fastgate_inflight_requests")
	f("GET", "/config", "", 401, "admin token")
	f("GET", "/config", "wrong", 401)
	f("GET", "/config", "s3cret-token", 200, `"token": "[redacted]"`, `"name": "users"`)
	f("GET", "/upstreams", "", 401)
	f("GET", "/upstreams", "s3cret-token", 200, `"addr": "`+u.addr+`"`, `"in_flight": 0`)
	f("POST", "/reload", "", 401)
	f("POST", "/reload", "s3cret-token", 200, `"reloaded"`)
	f("GET", "/nope", "", 404)
}

// TestAccessLog checks the fields of the JSON lines, that credentials never
// reach the log, and sampling.
func TestAccessLog(t *testing.T) {
	u := startUpstream(t, "users")
	logPath := t.TempDir() + "/access.log"
	g := startGateway(t, `
access_log: {path: "`+logPath+`"}
upstreams:
  users: {targets: [{url: "{{users}}"}]}
routes:
  - {name: users, match: {path: "/users/{id}"}, upstream: users}
`, u)
	r := g.get(t, "/users/7?q=1", "Authorization: Bearer secret-auth", "Cookie: session=secret-cookie",
		"X-Api-Key: secret-key", "User-Agent: ops-test \"quoted\"", "X-Request-ID: req-123")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	var line map[string]any
	waitFor(t, "an access log line", 5*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return len(b) > 0 && b[len(b)-1] == '\n' && json.Unmarshal(b, &line) == nil
	})
	raw, _ := os.ReadFile(logPath)
	for _, secret := range []string{"secret-auth", "secret-cookie", "secret-key"} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("access log contains %q:\n%s", secret, raw)
		}
	}
	want := map[string]any{
		"request_id": "req-123", "client_ip": "127.0.0.1", "method": "GET", "host": "127.0.0.1",
		"path": "/users/7", "route": "users", "upstream": "users", "target": u.addr,
		"status": 200.0, "bytes_in": 0.0, "user_agent": `ops-test "quoted"`,
	}
	for k, v := range want {
		if line[k] != v {
			t.Fatalf("access log %s: got %#v; want %#v\nline: %s", k, line[k], v, raw)
		}
	}
	for _, k := range []string{"time", "bytes_out", "duration_ms", "upstream_duration_ms"} {
		if _, ok := line[k]; !ok {
			t.Fatalf("access log lacks %s: %s", k, raw)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, line["time"].(string)); err != nil {
		t.Fatalf("time %v: %s", line["time"], err)
	}
}

// TestAccessLogSampling logs about half the requests at sample 0.5.
func TestAccessLogSampling(t *testing.T) {
	u := startUpstream(t, "users")
	logPath := t.TempDir() + "/access.log"
	g := startGateway(t, `
access_log: {path: "`+logPath+`", sample: 0.5}
upstreams:
  users: {targets: [{url: "{{users}}"}]}
routes:
  - {name: users, match: {path: "/u"}, upstream: users}
`, u)
	const n = 400
	for i := 0; i < n; i++ {
		g.get(t, "/u")
	}
	var lines int
	waitFor(t, "the sampled lines written", 5*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		lines = strings.Count(string(b), "\n")
		return g.metric(t, "fastgate_access_log_lines_total") == float64(lines) && lines > 0
	})
	// Binomial(400, 0.5): mean 200, sd 10; 140..260 is 6 sd.
	if lines < 140 || lines > 260 {
		t.Fatalf("sample 0.5 of %d requests logged %d lines; want about 200", n, lines)
	}
	t.Logf("sample 0.5: %d of %d requests logged", lines, n)
}

// TestReloadNeedsRestart checks that a reload changing the listen address
// applies the rest and says the address needs a restart.
func TestReloadNeedsRestart(t *testing.T) {
	a := startUpstream(t, "a")
	body := `
upstreams:
  a: {targets: [{url: "{{a}}"}]}
routes:
  - {name: base, match: {path: "/base"}, upstream: a}
`
	g := startGateway(t, body, a)
	other := freePort(t)
	cfg := writeConfig(t, "listen: \""+other+"\"\nadmin: {listen: \""+g.adminAddr+"\"}\n"+body+
		"  - {name: added, match: {path: \"/added\"}, upstream: a}\n", a)
	data, _ := os.ReadFile(cfg)
	if err := os.WriteFile(g.configPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := g.admin(t, "POST", "/reload", ""); r.status != 200 {
		t.Fatalf("reload: %d %s", r.status, r.body)
	}
	if r := g.get(t, "/added"); r.status != 200 {
		t.Fatalf("route added with the listen change: %d", r.status)
	}
	waitFor(t, "the restart warning", 5*time.Second, func() bool {
		return strings.Contains(g.stderr.String(), "need a restart to take effect") && strings.Contains(g.stderr.String(), "listen")
	})
}

// TestServerTimeouts checks the client-side deadlines end to end: a
// request that stalls mid-header gets 408 after read_timeout, an idle
// keep-alive connection is closed after idle_timeout, and a connection
// kept busy well past both keeps working (each request gets fresh
// deadlines, however lazily they are armed).
func TestServerTimeouts(t *testing.T) {
	u := startUpstream(t, "u")
	g := startGateway(t, `
server: {read_timeout: 300ms, idle_timeout: 500ms}
upstreams:
  u: {targets: [{url: "{{u}}"}]}
routes: [{upstream: u}]
`, u)

	// Busy for at least 2s, well past both timeouts: 20 requests back to
	// back on one connection, each held 100ms by the upstream (time passes
	// while a request is in flight, never while the connection is idle).
	rc := g.dialRaw(t)
	for i := 0; i < 20; i++ {
		if r := rc.send("GET /busy HTTP/1.1", "Host: gw", "X-Stub-Latency: 100ms"); r.status != 200 {
			t.Fatalf("request %d on a busy connection: status %d", i, r.status)
		}
	}

	// Stalled mid-header: 408, then the connection closes.
	stalled := g.dialRaw(t)
	stalled.c.SetDeadline(time.Now().Add(clientWait)) //nolint:errcheck
	if _, err := stalled.c.Write([]byte("GET /stall HTTP/1.1\r\nHost: gw\r\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := http.ReadResponse(stalled.br, nil)
	if err != nil {
		t.Fatalf("stalled request: %s after %s; want a 408", err, time.Since(start))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled request: status %d; want 408", resp.StatusCode)
	}

	// Idle: closed by the gateway after idle_timeout.
	idle := g.dialRaw(t)
	if r := idle.send("GET /idle HTTP/1.1", "Host: gw"); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	idle.c.SetDeadline(time.Now().Add(clientWait)) //nolint:errcheck
	start = time.Now()
	if _, err := idle.br.ReadByte(); err == nil {
		t.Fatal("idle connection sent data; want it closed")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection still open after %s; want it closed after the 500ms idle_timeout", time.Since(start))
	}
}
