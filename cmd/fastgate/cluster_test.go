package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestClusterExample runs examples/cluster/run.sh check: three gateways
// sharing Redis and etcd, a global rate limit across them, a target added
// in etcd served by all three, and a node killed under load while the
// other two serve. It builds into a temporary directory and uses the
// script's fixed loopback ports (see run.sh).
func TestClusterExample(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the cluster example takes about 15 s")
	}
	for _, bin := range []string{"etcd", "redis-server", "curl", "bash"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (%s); .ci/deps installs it", bin, err)
			}
			t.Skipf("%s not found; install it to run the cluster example", bin)
		}
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "examples", "cluster", "run.sh"), "check")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BIN="+t.TempDir())
	// SIGTERM, not SIGKILL, on timeout: the script's trap stops what it
	// started.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("run.sh check:\n%s", out)
	if err != nil {
		t.Fatalf("examples/cluster/run.sh check: %s", err)
	}
	if !strings.Contains(string(out), "PASS:") {
		t.Fatalf("examples/cluster/run.sh check: no PASS line")
	}
}
