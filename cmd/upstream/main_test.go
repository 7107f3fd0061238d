package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// buildUpstream builds this command into a temporary directory.
func buildUpstream(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("cannot find the go tool to build the binary: %s", err)
	}
	bin := filepath.Join(t.TempDir(), "upstream")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("cannot build upstream: %s\n%s", err, out)
	}
	return bin
}

// startUpstream starts bin with args and returns the process, its stdout
// and its stderr; the process is killed when the test ends if still running.
func startUpstream(t *testing.T, bin string, args ...string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("cannot pipe stdout: %s", err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start upstream: %s", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(stdout), &stderr
}

// readLine reads one line from r, giving up after 30s.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := r.ReadString('\n')
		ch <- result{line, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("cannot read the ready line: got %q, %s", res.line, res.err)
		}
		return res.line
	case <-time.After(30 * time.Second):
		t.Fatalf("got no ready line within 30s")
	}
	return ""
}

// waitExit waits, at most 30s, for cmd to exit and returns Wait's error.
func waitExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("upstream did not exit within 30s")
	}
	return nil
}

func TestUpstream(t *testing.T) {
	bin := buildUpstream(t)

	t.Run("serve-and-stop", func(t *testing.T) {
		cmd, stdout, stderr := startUpstream(t, bin, "-listen", "127.0.0.1:0", "-name", "users-a", "-demo", "users")
		line := readLine(t, stdout)
		const prefix = "upstream users-a listening on "
		if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, "\n") {
			t.Fatalf("got ready line %q; want %q<addr>", line, prefix)
		}
		addr := strings.TrimSuffix(strings.TrimPrefix(line, prefix), "\n")
		if !strings.HasPrefix(addr, "127.0.0.1:") || addr == "127.0.0.1:0" {
			t.Fatalf("got address %q; want 127.0.0.1 with the actual port", addr)
		}

		status, body, stubName := get(t, addr, "/healthz")
		if status != 200 || body != `{"status":"ok","name":"users-a"}` || stubName != "users-a" {
			t.Fatalf("GET /healthz: got %d %s X-Stub-Name %q; want 200 {\"status\":\"ok\",\"name\":\"users-a\"} users-a", status, body, stubName)
		}
		status, body, _ = get(t, addr, "/users/2")
		if status != 200 || !strings.Contains(body, `"id":2`) {
			t.Fatalf("GET /users/2: got %d %s; want 200 and user 2", status, body)
		}

		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("cannot signal upstream: %s", err)
		}
		if err := waitExit(t, cmd); err != nil {
			t.Fatalf("got exit %v after SIGTERM; want 0; stderr: %s", err, stderr)
		}
		rest, _ := io.ReadAll(stdout)
		if len(rest) > 0 {
			t.Fatalf("got more stdout after the ready line: %q; want none", rest)
		}
	})

	t.Run("plain-flags", func(t *testing.T) {
		cmd, stdout, stderr := startUpstream(t, bin, "-listen", "127.0.0.1:0", "-status", "503", "-size", "0")
		line := readLine(t, stdout)
		addr := strings.TrimSpace(line[strings.LastIndex(line, " ")+1:])
		status, body, stubName := get(t, addr, "/anything")
		if status != 503 || body != "" || stubName != "upstream" {
			t.Fatalf("GET /anything: got %d %q X-Stub-Name %q; want 503 \"\" upstream", status, body, stubName)
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatalf("cannot signal upstream: %s", err)
		}
		if err := waitExit(t, cmd); err != nil {
			t.Fatalf("got exit %v after SIGINT; want 0; stderr: %s", err, stderr)
		}
	})

	t.Run("invalid-flag", func(t *testing.T) {
		cmd, _, stderr := startUpstream(t, bin, "-listen", "127.0.0.1:0", "-demo", "carts")
		err := waitExit(t, cmd)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("got exit %v; want exit status 1", err)
		}
		if !strings.Contains(stderr.String(), `unknown Options.Demo "carts"`) {
			t.Fatalf("got stderr %q; want it to name the unknown demo", stderr)
		}
	})
}

// get sends GET uri to addr and returns status, body and X-Stub-Name.
func get(t *testing.T, addr, uri string) (int, string, string) {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + uri)
	c := &fasthttp.HostClient{Addr: addr}
	if err := c.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("GET %s: %s", uri, err)
	}
	return resp.StatusCode(), string(resp.Body()), string(resp.Header.Peek("X-Stub-Name"))
}
