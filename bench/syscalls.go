package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Syscall counting: one more run per target and workload, under
// `perf stat` attached to the proxy's processes, counting the syscall
// tracepoints. Counting adds a little to every syscall, so these runs are
// not among the measured ones; the counts per request do not depend on it.

// syscallEvents are the tracepoints counted, by the group they add to.
// Reads and writes on sockets take different calls in Go (read, write),
// nginx (recvfrom, writev) and HAProxy (recvfrom, sendto).
var syscallEvents = []struct{ event, group string }{
	{"raw_syscalls:sys_enter", "total"},
	{"syscalls:sys_enter_read", "read"},
	{"syscalls:sys_enter_readv", "read"},
	{"syscalls:sys_enter_recvfrom", "read"},
	{"syscalls:sys_enter_recvmsg", "read"},
	{"syscalls:sys_enter_write", "write"},
	{"syscalls:sys_enter_writev", "write"},
	{"syscalls:sys_enter_sendto", "write"},
	{"syscalls:sys_enter_sendmsg", "write"},
	{"syscalls:sys_enter_epoll_wait", "epoll_wait"},
	{"syscalls:sys_enter_epoll_pwait", "epoll_wait"},
	{"syscalls:sys_enter_epoll_pwait2", "epoll_wait"},
	{"syscalls:sys_enter_epoll_ctl", "epoll_ctl"},
	{"syscalls:sys_enter_futex", "futex"},
}

// syscallCounts are a target's syscalls per request in one run.
type syscallCounts struct {
	Requests  uint64  `json:"requests"`
	Total     float64 `json:"total"`
	Read      float64 `json:"read"`  // read, readv, recvfrom, recvmsg
	Write     float64 `json:"write"` // write, writev, sendto, sendmsg
	EpollWait float64 `json:"epoll_wait"`
	EpollCtl  float64 `json:"epoll_ctl"`
	Futex     float64 `json:"futex"`
	Other     float64 `json:"other"`
}

// String is the table's cell: "5.02 (read 3.00, write 2.00, ...)".
func (c *syscallCounts) String() string {
	return fmt.Sprintf("%.2f (read %.2f, write %.2f, epoll_wait %.2f, epoll_ctl %.2f, futex %.2f, other %.2f)",
		c.Total, c.Read, c.Write, c.EpollWait, c.EpollCtl, c.Futex, c.Other)
}

// perfUsable reports why perf cannot count syscalls here, nil if it can.
func perfUsable() error {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Errorf("perf not installed (apt-get install linux-perf)")
	}
	out, err := exec.Command(perf, "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("raw_syscalls:sys_enter")) {
		return fmt.Errorf("perf cannot count syscall tracepoints (run as root, or lower kernel.perf_event_paranoid): %v %s",
			err, bytes.TrimSpace(out))
	}
	return nil
}

// measureSyscalls runs w against t for d with perf stat attached to t's
// processes, and returns the syscalls per request served.
func (b *bench) measureSyscalls(w *workload, t *target, d time.Duration) (*syscallCounts, error) {
	pids := t.pids()
	ps := make([]string, len(pids))
	for i, p := range pids {
		ps[i] = strconv.Itoa(p)
	}
	args := []string{"stat", "-x,", "-p", strings.Join(ps, ",")}
	for _, e := range syscallEvents {
		args = append(args, "-e", e.event)
	}
	// perf counts until its command ends: a bit longer than the run, so
	// no request of it goes uncounted; the idle tail adds nothing.
	args = append(args, "--", "sleep", strconv.FormatFloat((d+d/4+time.Second).Seconds(), 'f', 2, 64))
	out := filepath.Join(b.env.dir, "perf-"+t.name+".csv")
	cmd := exec.Command("perf", append([]string{args[0], "-o", out}, args[1:]...)...)
	var perfOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &perfOut, &perfOut
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: perf stat: %w", err)
	}
	var wg sync.WaitGroup
	var perfErr error
	wg.Add(1)
	go func() { defer wg.Done(); perfErr = cmd.Wait() }()
	// perf attaches within milliseconds; the run's first requests after
	// that are counted, and the run's count is what loadgen reports.
	time.Sleep(200 * time.Millisecond)
	r, err := b.measure(w, t, d)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if perfErr != nil {
		return nil, fmt.Errorf("bench: perf stat on %s: %w\n%s", t.name, perfErr, perfOut.Bytes())
	}
	text, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("bench: perf stat output: %w", err)
	}
	counts, err := parsePerfCSV(string(text))
	if err != nil {
		return nil, fmt.Errorf("bench: perf stat on %s: %w", t.name, err)
	}
	return perRequest(counts, r.Requests), nil
}

// parsePerfCSV reads `perf stat -x,` output: count,unit,event,... per line;
// events perf could not count are left out.
func parsePerfCSV(text string) (map[string]float64, error) {
	counts := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || strings.HasPrefix(line, "#") {
			continue
		}
		n, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue // "<not counted>", "<not supported>"
		}
		counts[f[2]] = n
	}
	if _, ok := counts["raw_syscalls:sys_enter"]; !ok {
		return nil, fmt.Errorf("no raw_syscalls:sys_enter count in:\n%s", text)
	}
	return counts, nil
}

// perRequest groups the event counts and divides them by requests.
func perRequest(counts map[string]float64, requests uint64) *syscallCounts {
	c := &syscallCounts{Requests: requests}
	if requests == 0 {
		return c
	}
	n := float64(requests)
	for _, e := range syscallEvents {
		v := counts[e.event] / n
		switch e.group {
		case "total":
			c.Total += v
		case "read":
			c.Read += v
		case "write":
			c.Write += v
		case "epoll_wait":
			c.EpollWait += v
		case "epoll_ctl":
			c.EpollCtl += v
		case "futex":
			c.Futex += v
		}
	}
	c.Other = max(0, c.Total-c.Read-c.Write-c.EpollWait-c.EpollCtl-c.Futex)
	return c
}
