// Package etcdtest runs a real etcd server (Debian's etcd-server package)
// on free loopback ports for tests, with a temporary data directory. A
// missing binary fails the test under CI=true and skips it otherwise, so
// CI never passes by skipping.
package etcdtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds the wait for a started etcd to report healthy.
// Generous: the test machine is shared.
const startTimeout = 20 * time.Second

// Server is one single-member etcd. Its methods are for the test's
// goroutine.
type Server struct {
	t          testing.TB
	bin        string
	clientPort int
	peerPort   int
	dir        string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedBuffer
}

// Start starts etcd and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("etcd not found (%s); install etcd-server (apt-get install etcd-server)", err)
		}
		t.Skip("etcd not found; install etcd-server (apt-get install etcd-server) to run this test")
	}
	s := &Server{t: t, bin: bin, clientPort: freePort(t), peerPort: freePort(t), dir: t.TempDir()}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Endpoint returns "127.0.0.1:PORT", the client address.
func (s *Server) Endpoint() string { return "127.0.0.1:" + strconv.Itoa(s.clientPort) }

// Restart starts the server again after Stop (Start calls it first), on
// the same ports and data directory, so it keeps its keys and revisions,
// and waits until it reports healthy.
func (s *Server) Restart() {
	s.t.Helper()
	client := "http://" + s.Endpoint()
	peer := "http://127.0.0.1:" + strconv.Itoa(s.peerPort)
	cmd := exec.Command(s.bin,
		"--name", "etcdtest",
		"--data-dir", s.dir,
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "etcdtest="+peer,
		"--log-outputs", "stderr",
		"--logger", "zap",
		"--log-level", "warn",
	)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start etcd: %s", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() //nolint:errcheck // killed on purpose, or reported below
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.log = cmd, exited, log
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for !healthy(client) {
		select {
		case <-exited:
			s.t.Fatalf("etcd exited before it was healthy; output:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("etcd on %s not healthy within %s; output:\n%s", client, startTimeout, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: as abrupt as a crash). It is safe to
// call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill() //nolint:errcheck // it may have exited
	<-exited
}

// Output returns what the running (or last) etcd process printed.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

// healthy reports whether the etcd at client answers /health with true.
func healthy(client string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, client+"/health", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"health":"true"`)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
