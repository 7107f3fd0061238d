package loadtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process started by the stack runner or the bench
// harness, with the tail of its output kept for error messages.
//
// Its methods are safe for concurrent use.
type Proc struct {
	Name   string
	cmd    *exec.Cmd
	out    tailBuffer
	exited chan struct{} // closed once the process has exited
	err    error         // Wait's error, valid once exited is closed
}

// StartProc starts path with args and extra environment variables env.
// When readyPrefix is not empty it waits up to timeout for a stdout line
// starting with it and returns the line's last field (an address).
func StartProc(name, path string, args, env []string, readyPrefix string, timeout time.Duration) (*Proc, string, error) {
	p := &Proc{Name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = &p.out
	var lines chan string
	if readyPrefix != "" {
		r, w := io.Pipe()
		p.cmd.Stdout = w
		lines = make(chan string, 1)
		go scanReady(r, readyPrefix, lines, &p.out)
		defer func() {
			go func() { <-p.exited; w.Close() }()
		}()
	} else {
		p.cmd.Stdout = &p.out
	}
	if err := p.cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s (%s): %w", name, path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	if lines == nil {
		return p, "", nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-lines:
		f := strings.Fields(line)
		return p, f[len(f)-1], nil
	case <-p.exited:
		return nil, "", fmt.Errorf("%s exited before it was ready (%v); output:\n%s", name, p.err, p.Output())
	case <-t.C:
		p.Kill()
		return nil, "", fmt.Errorf("%s: no %q line within %s; output:\n%s", name, readyPrefix, timeout, p.Output())
	}
}

// scanReady sends the first line starting with prefix to lines and keeps
// the rest of the output in tail.
func scanReady(r io.Reader, prefix string, lines chan<- string, tail io.Writer) {
	sc := bufio.NewScanner(r)
	sent := false
	for sc.Scan() {
		if !sent && strings.HasPrefix(sc.Text(), prefix) {
			lines <- sc.Text()
			sent = true
			continue
		}
		fmt.Fprintln(tail, sc.Text())
	}
	io.Copy(io.Discard, r) //nolint:errcheck // drain until the writer closes
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Output returns the last few KiB of the process's output.
func (p *Proc) Output() string { return p.out.String() }

// Signal sends sig unless the process has exited.
func (p *Proc) Signal(sig os.Signal) error {
	if p.Exited() {
		return fmt.Errorf("%s has exited", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Kill kills the process and waits for its exit.
func (p *Proc) Kill() {
	p.cmd.Process.Kill() //nolint:errcheck // it may have exited
	<-p.exited
}

// Stop sends SIGTERM, waits up to timeout, then kills. It returns an error
// when the process did not exit by itself with status 0 (or was killed
// by an earlier signal).
func (p *Proc) Stop(timeout time.Duration) error {
	if !p.Exited() {
		p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have just exited
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.Kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.Name, timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) && !ee.Exited() {
		return nil // ended by a signal: KILL from an action, or TERM without a handler
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w; output:\n%s", p.Name, p.err, p.Output())
	}
	return nil
}

// CPUTime returns the user+system CPU time of pid and every descendant
// still running, from /proc/PID/stat (fields 14 and 15, clock ticks).
func CPUTime(pid int) (time.Duration, error) {
	user, sys, err := CPUTimes(pid)
	return user + sys, err
}

// CPUTimes is CPUTime split into user and system (kernel) time.
func CPUTimes(pid int) (user, sys time.Duration, err error) {
	u, s, err := procTicks(pid)
	if err != nil {
		return 0, 0, err
	}
	for _, c := range descendants(pid) {
		if cu, cs, err := procTicks(c); err == nil {
			u, s = u+cu, s+cs
		}
	}
	tick := time.Second / time.Duration(clockTicks())
	return time.Duration(u) * tick, time.Duration(s) * tick, nil
}

// procStat returns the fields of /proc/PID/stat after the command name:
// field 3 (state) is index 0.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')') // the name may hold spaces and parentheses
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// procTicks returns utime and stime of pid in clock ticks.
func procTicks(pid int) (user, sys int64, err error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, 0, err
	}
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	s, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return u, s, nil
}

// ProcessTree returns pid and the processes descending from it (nginx's
// workers, say), for tools that observe a server as a whole.
func ProcessTree(pid int) []int {
	return append([]int{pid}, descendants(pid)...)
}

// descendants returns the pids of every process below pid.
func descendants(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := procStat(c); err == nil && len(f) > 1 {
			pp, _ := strconv.Atoi(f[1]) // field 4: ppid
			parent[c] = pp
		}
	}
	var out []int
	for c := range parent {
		for p := parent[c]; p > 1; p = parent[p] {
			if p == pid {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

var (
	clkOnce sync.Once
	clkTck  int64 = 100
)

// clockTicks returns `getconf CLK_TCK`, 100 when unavailable.
func clockTicks() int64 {
	clkOnce.Do(func() {
		out, err := exec.Command("getconf", "CLK_TCK").Output()
		if err != nil {
			return
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
			clkTck = v
		}
	})
	return clkTck
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tailBuffer keeps the last tailSize bytes written.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailSize = 8 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.b = append(t.b, p...)
	if len(t.b) > 2*tailSize {
		t.b = append(t.b[:0], t.b[len(t.b)-tailSize:]...)
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) > tailSize {
		return string(t.b[len(t.b)-tailSize:])
	}
	return string(t.b)
}
