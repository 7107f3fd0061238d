package main

// The harness of the integration tests: it builds the fastgate and upstream
// binaries once, runs them as processes on loopback ports and stops them
// with SIGTERM.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fastgate/cmd/upstream/stub"
)

// Paths of the binaries built by TestMain.
var (
	fastgateBin string
	upstreamBin string
)

// Bounds of the harness's waits. Generous: the machine is shared.
const (
	startTimeout = 10 * time.Second // a process listening
	stopTimeout  = 15 * time.Second // a process exiting after SIGTERM
	pollInterval = 20 * time.Millisecond
	clientWait   = 10 * time.Second // one request through the gateway
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds both binaries into a temporary directory, runs the
// tests and removes the directory.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "fastgate-integration-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %s\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %s\n", err)
		return 1
	}
	fastgateBin = filepath.Join(dir, "fastgate")
	upstreamBin = filepath.Join(dir, "upstream")
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/fastgate", "./cmd/upstream")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go build ./cmd/fastgate ./cmd/upstream: %s\n%s", err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot returns the directory of the module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not in a module")
	}
	return filepath.Dir(gomod), nil
}

// syncBuffer is a bytes.Buffer safe for a process writing while a test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running binary.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr syncBuffer
	exited chan struct{} // closed when the process has exited
	code   int           // exit code, valid once exited is closed; -1: killed by a signal
}

// startProc starts bin with args and collects its exit in the background.
func startProc(t *testing.T, name, bin string, stdout io.Writer, args ...string) *proc {
	t.Helper()
	return startProcEnv(t, name, bin, nil, stdout, args...)
}

// startProcEnv is startProc with the environment env (nil: the test's).
func startProcEnv(t *testing.T, name, bin string, env []string, stdout io.Writer, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout = stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %s", name, err)
	}
	go func() {
		p.cmd.Wait() //nolint:errcheck // the exit code is what counts
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	return p
}

// stop sends SIGTERM and waits for the exit; after stopTimeout it kills the
// process. It returns the exit code (-1 when killed).
func (p *proc) stop() int {
	select {
	case <-p.exited:
		return p.code
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have just exited
	return p.wait(stopTimeout)
}

// wait waits up to d for the exit, then kills the process.
func (p *proc) wait(d time.Duration) int {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		p.cmd.Process.Kill() //nolint:errcheck
		<-p.exited
	}
	return p.code
}

// stopInCleanup stops p when the test ends and fails the test unless it
// exits 0.
func (p *proc) stopInCleanup(t *testing.T) {
	t.Cleanup(func() {
		if code := p.stop(); code != 0 {
			t.Errorf("%s exit code after SIGTERM got %d; want 0; stderr:\n%s", p.name, code, p.stderr.String())
		}
	})
}

// upstream is a running stub upstream.
type upstream struct {
	*proc
	stubName string // its -name, sent back in X-Stub-Name
	addr     string // "127.0.0.1:PORT"
}

// url returns the target URL of u for a config.
func (u *upstream) url() string { return "http://" + u.addr }

// startUpstream starts the upstream binary named name on a free loopback
// port with extra flags (-echo, -latency ...) and waits for its ready line.
func startUpstream(t *testing.T, name string, flags ...string) *upstream {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("pipe: %s", err)
	}
	args := append([]string{"-listen", "127.0.0.1:0", "-name", name}, flags...)
	p := startProc(t, "upstream "+name, upstreamBin, w, args...)
	w.Close() // the child has its copy
	p.stopInCleanup(t)
	lines := make(chan string, 1)
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, r) //nolint:errcheck // drain until the process exits
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case line, ok := <-lines:
		prefix := "upstream " + name + " listening on "
		addr, found := strings.CutPrefix(line, prefix)
		if !ok || !found {
			t.Fatalf("upstream %s: first stdout line got %q; want %q; stderr:\n%s", name, line, prefix+"ADDR", p.stderr.String())
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			t.Fatalf("upstream %s: address %q in the ready line: %s", name, addr, err)
		}
		return &upstream{proc: p, stubName: name, addr: addr}
	case <-timer.C:
		t.Fatalf("upstream %s: no ready line within %s; stderr:\n%s", name, startTimeout, p.stderr.String())
	}
	return nil
}

// gateway is a running fastgate.
type gateway struct {
	*proc
	addr       string // "127.0.0.1:PORT"
	adminAddr  string // "127.0.0.1:PORT" of the admin API, "" when the config sets admin itself
	configPath string
	client     *http.Client
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on a free port: %s", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// writeConfig writes a YAML config into a test directory and returns its
// path. In body, "{{NAME}}" becomes the target URL of the upstream NAME.
func writeConfig(t *testing.T, body string, ups ...*upstream) string {
	t.Helper()
	var pairs []string
	for _, u := range ups {
		pairs = append(pairs, "{{"+u.stubName+"}}", u.url())
	}
	body = strings.NewReplacer(pairs...).Replace(body)
	if i := strings.Index(body, "{{"); i >= 0 {
		t.Fatalf("config has an unknown placeholder at %q", body[i:])
	}
	path := filepath.Join(t.TempDir(), "fastgate.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatalf("write config: %s", err)
	}
	return path
}

// startGateway writes a config of body (without listen, which the harness
// sets to a free loopback port, and with the admin API on another free port
// unless body sets admin), starts fastgate with it and waits until it
// accepts connections. It is stopped with SIGTERM when the test ends, and
// must exit 0. Extra command-line flags may follow the config in args.
func startGateway(t *testing.T, body string, ups ...*upstream) *gateway {
	t.Helper()
	return startGatewayArgs(t, body, nil, ups...)
}

// startGatewayArgs is startGateway with extra fastgate flags.
func startGatewayArgs(t *testing.T, body string, args []string, ups ...*upstream) *gateway {
	t.Helper()
	addr := freePort(t)
	head := "listen: \"" + addr + "\"\n"
	adminAddr := ""
	if !strings.HasPrefix(body, "admin:") && !strings.Contains(body, "\nadmin:") {
		adminAddr = freePort(t)
		head += "admin: {listen: \"" + adminAddr + "\"}\n"
	}
	path := writeConfig(t, head+body, ups...)
	args = append([]string{"-config", path, "-log-level", "warn"}, args...)
	p := startProc(t, "fastgate", fastgateBin, io.Discard, args...)
	p.stopInCleanup(t)
	g := &gateway{proc: p, addr: addr, adminAddr: adminAddr, configPath: path, client: newClient()}
	t.Cleanup(g.client.CloseIdleConnections)
	deadline := time.Now().Add(startTimeout)
	for {
		// The gateway's port opens before the admin API's: wait for both.
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil && adminAddr != "" {
			c.Close()
			c, err = net.DialTimeout("tcp4", adminAddr, time.Second)
		}
		if err == nil {
			c.Close()
			return g
		}
		select {
		case <-p.exited:
			t.Fatalf("fastgate exited with %d before listening on %s; stderr:\n%s", p.code, addr, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("fastgate not listening on %s after %s: %s; stderr:\n%s", addr, startTimeout, err, p.stderr.String())
		}
		time.Sleep(pollInterval)
	}
}

func newClient() *http.Client {
	return &http.Client{
		Timeout: clientWait,
		Transport: &http.Transport{
			DisableCompression:  true,
			MaxIdleConnsPerHost: 64,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// response is a response read whole.
type response struct {
	status int
	header http.Header
	body   []byte
	// close reports "Connection: close", which net/http removes from
	// header.
	close bool
	// length is the Content-Length, -1 for a chunked body.
	length int64
}

// do sends method path to the gateway with Host host (the gateway's
// address when empty) and "Name: value" headers, and reads the response.
func (g *gateway) do(t *testing.T, method, path, host string, headers ...string) *response {
	t.Helper()
	r, err := g.try(method, path, host, headers...)
	if err != nil {
		t.Fatalf("%s; fastgate stderr:\n%s", err, g.stderr.String())
	}
	return r
}

// try is do for any goroutine: it returns the failure instead of ending
// the test.
func (g *gateway) try(method, path, host string, headers ...string) (*response, error) {
	req, err := http.NewRequest(method, "http://"+g.addr+path, nil)
	if err != nil {
		return nil, fmt.Errorf("new request %s %s: %w", method, path, err)
	}
	if host != "" {
		req.Host = host
	}
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s (host %q): %w", method, path, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s (host %q): reading the body: %w", method, path, host, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body, close: resp.Close, length: resp.ContentLength}, nil
}

// get is do for GET.
func (g *gateway) get(t *testing.T, path string, headers ...string) *response {
	t.Helper()
	return g.do(t, http.MethodGet, path, "", headers...)
}

// rawConn is a client connection to the gateway that writes requests byte
// for byte, so no client library normalizes them.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (g *gateway) dialRaw(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp4", g.addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %s", g.addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes the request head given as lines (CRLF added) and returns
// the response read whole.
func (rc *rawConn) send(lines ...string) *response {
	rc.t.Helper()
	rc.c.SetDeadline(time.Now().Add(clientWait)) //nolint:errcheck
	raw := strings.Join(lines, "\r\n") + "\r\n\r\n"
	if _, err := io.WriteString(rc.c, raw); err != nil {
		rc.t.Fatalf("write %q: %s", lines[0], err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("read the response to %q: %s", lines[0], err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("read the body of the response to %q: %s", lines[0], err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body, close: resp.Close, length: resp.ContentLength}
}

// mustEcho decodes the echo in r, which must be a 200.
func mustEcho(t *testing.T, r *response) *stub.Echo {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status got %d; want 200; body %s", r.status, r.body)
	}
	var e stub.Echo
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("echo body %q: %s", r.body, err)
	}
	return &e
}

// gatewayError is the JSON body of the gateway's own error responses.
type gatewayError struct {
	Error     string `json:"error"`
	Status    int    `json:"status"`
	RequestID string `json:"request_id"`
}

// checkGatewayError checks that r is the gateway's JSON error with status
// want and a request id that matches the X-Request-ID header.
func checkGatewayError(t *testing.T, what string, r *response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("%s: status got %d; want %d; body %s", what, r.status, want, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type got %q; want %q", what, ct, "application/json")
	}
	var e gatewayError
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("%s: error body %q is not the gateway's JSON: %s", what, r.body, err)
	}
	if e.Error == "" {
		t.Errorf("%s: error body %q: empty \"error\"", what, r.body)
	}
	if e.Status != want {
		t.Errorf("%s: error body \"status\" got %d; want %d", what, e.Status, want)
	}
	if e.RequestID == "" || e.RequestID != r.header.Get("X-Request-ID") {
		t.Errorf("%s: error body \"request_id\" got %q; want the X-Request-ID header %q, not empty", what, e.RequestID, r.header.Get("X-Request-ID"))
	}
}

// plainRoutes routes every path to the stub upstream named "plain".
const plainRoutes = `
upstreams:
  plain: {targets: [{url: "{{plain}}"}]}
routes:
  - match: {path: "/{rest:*}"}
    upstream: plain
`

// plainGateway starts a "plain" stub upstream and a gateway routing every
// path to it.
func plainGateway(t *testing.T) *gateway {
	t.Helper()
	u := startUpstream(t, "plain")
	return startGateway(t, plainRoutes, u)
}

// runFastgate runs the fastgate binary with args to its exit and returns
// the exit code and output.
func runFastgate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, fastgateBin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("fastgate %q: %s", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("fastgate %q: still running after %s", args, stopTimeout)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// checkRejects runs fastgate -check on the config body, which must be
// refused (exit 1) with each of wants in its problems, and returns stderr.
func checkRejects(t *testing.T, body string, wants ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runFastgate(t, "-check", "-config", path)
	if code != 1 {
		t.Fatalf("-check of a bad config: exit code got %d; want 1; stderr:\n%s", code, stderr)
	}
	for _, want := range wants {
		if !strings.Contains(stderr, want) {
			t.Errorf("-check: stderr has no %q; stderr:\n%s", want, stderr)
		}
	}
	return stderr
}

// wantProblem fails t unless stderr of fastgate -check has a line for the
// config path that mentions what.
func wantProblem(t *testing.T, stderr, path, what string) {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, path+": ") && strings.Contains(line, what) {
			return
		}
	}
	t.Errorf("-check: stderr has no line %q mentioning %q; stderr:\n%s", path+": ...", what, stderr)
}
