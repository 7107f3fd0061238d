package main

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"fastgate/core/sysmon"
)

// TestSysmonGODEBUG checks that fastgate runs with schedtrace added to
// GODEBUG (core/sysmon), keeping the settings GODEBUG had, and leaves a
// GODEBUG that names schedtrace as it is.
func TestSysmonGODEBUG(t *testing.T) {
	u := startUpstream(t, "plain")
	for _, tc := range []struct {
		name, godebug, want string
	}{
		{"unset", "", sysmon.GODEBUG},
		{"other settings kept", "madvdontneed=1", "madvdontneed=1," + sysmon.GODEBUG},
		{"schedtrace named", "schedtrace=0", "schedtrace=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "GODEBUG=") {
					env = append(env, kv)
				}
			}
			if tc.godebug != "" {
				env = append(env, "GODEBUG="+tc.godebug)
			}
			addr := freePort(t)
			path := writeConfig(t, "listen: \""+addr+"\"\nadmin: {listen: \"off\"}"+plainRoutes, u)
			p := startProcEnv(t, "fastgate", fastgateBin, env, io.Discard, "-config", path, "-log-level", "warn")
			p.stopInCleanup(t)
			waitListening(t, p, addr)

			b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/environ")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, kv := range strings.Split(string(b), "\x00") {
				if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
					got = append(got, v)
				}
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("fastgate's GODEBUG got %q; want [%q]", got, tc.want)
			}
			g := &gateway{proc: p, addr: addr, client: newClient()}
			t.Cleanup(g.client.CloseIdleConnections)
			if r := g.get(t, "/x"); r.status != 200 {
				t.Fatalf("GET /x got %d; want 200", r.status)
			}
		})
	}
}
