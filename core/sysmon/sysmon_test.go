package sysmon

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// helperEnv makes the test binary act as a program calling Tune.
const helperEnv = "FASTGATE_SYSMON_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		Tune()
		fmt.Printf("GODEBUG=%s\n", os.Getenv("GODEBUG"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestTune runs this test binary as a program that calls Tune first, and
// checks the GODEBUG it ends up running with: GODEBUG added, the other
// settings kept, and a GODEBUG that names schedtrace left alone.
func TestTune(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Tune re-executes on Linux only")
	}
	for _, tc := range []struct{ godebug, want string }{
		{"", GODEBUG},
		{"madvdontneed=1", "madvdontneed=1," + GODEBUG},
		{"schedtrace=0", "schedtrace=0"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GODEBUG=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, helperEnv+"=1")
		if tc.godebug != "" {
			cmd.Env = append(cmd.Env, "GODEBUG="+tc.godebug)
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("GODEBUG=%q: %v", tc.godebug, err)
		}
		if got := strings.TrimSpace(string(out)); got != "GODEBUG="+tc.want {
			t.Fatalf("GODEBUG=%q: the program ran with %q; want GODEBUG=%s", tc.godebug, got, tc.want)
		}
	}
}
