package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPGOProfile runs make pgo's mode on two workloads for 1s each and
// checks that it writes one CPU profile that covers fastgate's request path
// under both: what go build optimizes cmd/fastgate with.
func TestPGOProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the bench harness runs real processes")
	}
	file := filepath.Join(t.TempDir(), "default.pgo")
	var stdout, stderr bytes.Buffer
	args := []string{"-bin", testBin(t), "-time", "1s", "-workloads", "workloads.json", "-install=false",
		"-only", "get-small,fastgate-features", "-pgo", file}
	if code := runMain(args, &stdout, &stderr); code != 0 {
		t.Fatalf("bench -pgo exit code %d; stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	requireContains(t, "stdout", stdout.String(), "profiled get-small for 1s", "profiled fastgate-features for 1s",
		"wrote "+file+" (2 workloads")
	out, err := exec.Command("go", "tool", "pprof", "-traces", file).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -traces %s: %s\n%s", file, err, out)
	}
	// Samples of fastgate's own code; which functions a short profile on a
	// busy machine caught is chance.
	requireContains(t, "the profile's stacks", string(out), "Type: cpu", "fastgate/core.", "github.com/valyala/fasthttp.")
}

// TestPGOConfigs checks that make pgo can turn the admin listener on in
// every fastgate config the workloads use: the profiler is served there.
func TestPGOConfigs(t *testing.T) {
	plain, err := render(fastgateConfig, &env{gomaxprocs: 1, cores: 1})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := loadWorkloads("workloads.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		tmpl := w.fastgateTmpl
		if tmpl == "" {
			tmpl = plain
		}
		if strings.Count(tmpl, adminOff) != 1 {
			t.Errorf("workload %s: its fastgate config has %d lines %s; want one, which make pgo replaces", w.Name, strings.Count(tmpl, adminOff), adminOff)
		}
	}
}
