package loadtest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// testBin returns a directory with fastgate and upstream built from this
// tree (or $FASTGATE_TEST_BIN when set, to reuse prebuilt ones).
func testBin(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("FASTGATE_TEST_BIN"); d != "" {
		return d
	}
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", dir+"/", "fastgate/cmd/fastgate", "fastgate/cmd/upstream").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %s\n%s", err, out)
	}
	return dir
}

// TestStackUpstreamFailure runs upstream-failure, shortened, on a real
// stack: the KILL action takes one of two upstreams away until the start
// action brings it back, and the gateway's retries hide it from clients.
func TestStackUpstreamFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the built binaries")
	}
	sc, err := Load("scenarios/upstream-failure.json")
	if err != nil {
		t.Fatal(err)
	}
	o := Overrides{Duration: 2 * time.Second, Rate: 200}
	if err := o.Apply(sc); err != nil {
		t.Fatal(err)
	}
	st, err := StartStack(sc, testBin(t))
	if err != nil {
		t.Fatal(err)
	}
	sc.Target = st.Target
	s := Run(context.Background(), sc, Options{Vars: st.Vars, Procs: st})
	if err := st.Close(); err != nil {
		t.Errorf("stack close: %s", err)
	}
	if len(s.Actions) != 2 || !s.Actions[0].OK || !s.Actions[1].OK {
		t.Fatalf("actions %+v; want the KILL and the start to succeed", s.Actions)
	}
	if s.Requests == 0 || s.Status["200"] != s.Requests || s.Failed != 0 {
		t.Fatalf("got requests %d, status %v, failed %d; want every request answered 200 while upstream-2 is down (retried on upstream-1)",
			s.Requests, s.Status, s.Failed)
	}
	if len(s.Thresholds) != len(sc.Thresholds) {
		t.Fatalf("thresholds evaluated %d; want %d", len(s.Thresholds), len(sc.Thresholds))
	}
}

// TestStackBadConfig: a gateway that rejects its config is reported with
// its output.
func TestStackBadConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the built binaries")
	}
	dir := t.TempDir()
	os.WriteFile(dir+"/bad.yaml", []byte("listen: \"{{listen}}\"\nroutes: [{upstream: nope}]\n"), 0o644)                                                         //nolint:errcheck
	os.WriteFile(dir+"/s.json", []byte(`{"executor":"constant-vus","vus":1,"duration":"1s","thresholds":["failed == 0"],"stack":{"config":"bad.yaml"}}`), 0o644) //nolint:errcheck
	sc, err := Load(dir + "/s.json")
	if err != nil {
		t.Fatal(err)
	}
	st, err := StartStack(sc, testBin(t))
	if err == nil {
		st.Close() //nolint:errcheck
		t.Fatal("StartStack with an invalid gateway config: no error; want one")
	}
	t.Logf("error, as wanted: %s", err)
}
