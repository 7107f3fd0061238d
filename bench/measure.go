package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"fastgate/loadtest"
)

// run is one measurement of one target under one workload.
type run struct {
	Requests   uint64  `json:"requests"`
	Errors     uint64  `json:"errors"`
	RPS        float64 `json:"rps"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	P999       float64 `json:"p99_9_ms"`
	CPUSeconds float64 `json:"cpu_s"`          // proxy process (or upstream for direct; fastgate-reuseport's processes summed) utime+stime during the run
	CPUPerReq  float64 `json:"cpu_us_per_req"` // CPUSeconds / Requests, µs
	// CPUPerReq split: utime (the proxy's own code, its runtime and
	// libraries) and stime (the kernel: sockets, TCP, loopback, wake-ups).
	UserPerReq float64 `json:"user_us_per_req"`
	SysPerReq  float64 `json:"sys_us_per_req"`

	// Open model only (-open-load); zero, and left out of the JSON, in
	// the closed runs.
	OfferedRPS float64 `json:"offered_rps,omitempty"`     // scheduled arrivals per second; RPS is what was served
	Dropped    uint64  `json:"dropped,omitempty"`         // arrivals loadgen did not send: -open-max-vus requests in flight
	SendLagP99 float64 `json:"send_lag_p99_ms,omitempty"` // p99 of how late loadgen itself sent, ms; part of the latencies
	VUs        int     `json:"vus,omitempty"`             // VUs loadgen started, each with at most one connection in use
}

// measure runs loadgen with w against t for d in the closed model
// (-conns connections back to back) and reads t's CPU time (all its
// processes') around it.
func (b *bench) measure(w *workload, t *target, d time.Duration) (run, error) {
	sc, err := w.scenario(t.url, b.env.conns, d.String())
	if err != nil {
		return run{}, err
	}
	s, cpu, err := b.loadgen(w, t, sc, "")
	if err != nil {
		return run{}, err
	}
	return newRun(s, cpu), nil
}

// measureOpen runs loadgen with w against t for d in the open model: rate
// arrivals per second, -conns VUs started up front (the closed model's
// connections, which saturate the target: below saturation fewer are in
// flight) and up to -open-max-vus when the target falls behind. The
// default 2000 lets the target hold every request for 100ms at 20,000
// arrivals/s before loadgen drops one, and stays below nginx's
// worker_connections and HAProxy's maxconn (4096), whose refusals would
// count as errors instead. Latencies count from each arrival's scheduled
// send time (see openScenario).
func (b *bench) measureOpen(w *workload, t *target, rate float64, d time.Duration) (run, error) {
	sc, err := w.openScenario(t.url, rate, b.env.conns, b.cfg.openMaxVUs, d.String())
	if err != nil {
		return run{}, err
	}
	// With -keep, each run's timeline is kept beside the configs: where a
	// tail came from (the generator late, a stretch without responses, a
	// burst of new connections) is there, not in the percentiles.
	timeline := ""
	if b.cfg.keep {
		b.openRuns++
		timeline = filepath.Join(b.env.dir, fmt.Sprintf("timeline-%s-%s-%d.csv", w.Name, t.name, b.openRuns))
	}
	s, cpu, err := b.loadgen(w, t, sc, timeline)
	if err != nil {
		return run{}, err
	}
	r := newRun(s, cpu)
	r.OfferedRPS, r.Dropped, r.VUs = rate, s.Dropped, s.VUsMax
	if lag := s.DispatchLag; lag != nil {
		r.SendLagP99 = lag.P99
	}
	return r, nil
}

// loadgen runs the loadgen scenario sc of w against t and returns its
// summary and t's CPU time during the run; a timeline path, when set, gets
// the run's timeline (loadgen -timeline).
func (b *bench) loadgen(w *workload, t *target, sc []byte, timeline string) (*loadtest.Summary, cpuTime, error) {
	scPath := filepath.Join(b.env.dir, "scenario-"+w.Name+".json")
	out := filepath.Join(b.env.dir, "summary.json")
	if err := os.WriteFile(scPath, sc, 0o644); err != nil {
		return nil, cpuTime{}, err
	}
	os.Remove(out)
	args := []string{filepath.Join(b.env.bin, "loadgen"), "-quiet", "-scenario", scPath, "-json", out}
	if timeline != "" {
		args = append(args, "-timeline", timeline)
	}
	argv := b.env.pinned("1", args)
	cpu0, err := t.cpuTime()
	if err != nil {
		return nil, cpuTime{}, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	res, cmdErr := cmd.CombinedOutput()
	cpu1, err := t.cpuTime()
	if err != nil {
		return nil, cpuTime{}, err
	}
	var s loadtest.Summary
	b2, err := os.ReadFile(out)
	if err != nil {
		return nil, cpuTime{}, fmt.Errorf("bench: loadgen against %s: %v %w\n%s", t.name, cmdErr, err, res)
	}
	if err := json.Unmarshal(b2, &s); err != nil {
		return nil, cpuTime{}, fmt.Errorf("bench: loadgen summary: %w", err)
	}
	return &s, cpu1.sub(cpu0), nil
}

// newRun returns the run of loadgen's summary s during which the target
// used cpu.
func newRun(s *loadtest.Summary, cpu cpuTime) run {
	r := run{Requests: s.Requests, Errors: s.Failed, RPS: s.RPS, P50: s.Latency.P50, P99: s.Latency.P99,
		P999: s.Latency.P999, CPUSeconds: cpu.total().Seconds()}
	if n := float64(s.Requests); n > 0 {
		r.CPUPerReq = r.CPUSeconds * 1e6 / n
		r.UserPerReq = cpu.user.Seconds() * 1e6 / n
		r.SysPerReq = cpu.sys.Seconds() * 1e6 / n
	}
	return r
}

// wrkRun is one wrk cross-check.
type wrkRun struct {
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"` // non-2xx/3xx plus socket errors
	RPS       float64 `json:"rps"`
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	CPUPerReq float64 `json:"cpu_us_per_req"`
}

// measureWrk runs `wrk -t1 -cN -dD --latency` with w against t.
func (b *bench) measureWrk(w *workload, t *target, d time.Duration) (*wrkRun, error) {
	script := filepath.Join(b.env.dir, "wrk-"+w.Name+".lua")
	if err := os.WriteFile(script, []byte(w.wrkScript()), 0o644); err != nil {
		return nil, err
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	argv := b.env.pinned("1", []string{b.wrk, "-t1", "-c" + strconv.Itoa(b.env.conns), "-d" + strconv.Itoa(secs) + "s",
		"--latency", "-s", script, t.url + w.Path})
	cpu0, err := t.cpuTime()
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("bench: wrk against %s: %w\n%s", t.name, err, out)
	}
	cpu1, err := t.cpuTime()
	if err != nil {
		return nil, err
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return nil, fmt.Errorf("bench: wrk against %s: %w\n%s", t.name, err, out)
	}
	if r.Requests > 0 {
		r.CPUPerReq = cpu1.sub(cpu0).total().Seconds() * 1e6 / float64(r.Requests)
	}
	return r, nil
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads the summary wrk prints with --latency.
func parseWrk(out string) (*wrkRun, error) {
	r := &wrkRun{}
	m := wrkRequests.FindStringSubmatch(out)
	rps := wrkRPS.FindStringSubmatch(out)
	if m == nil || rps == nil {
		return nil, fmt.Errorf("no \"requests in\" or \"Requests/sec\" line in the wrk output")
	}
	r.Requests, _ = strconv.ParseUint(m[1], 10, 64)
	r.RPS, _ = strconv.ParseFloat(rps[1], 64)
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		switch p[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if p[1] == "50" {
			r.P50 = v
		} else {
			r.P99 = v
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		r.Errors += n
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseUint(s, 10, 64)
			r.Errors += n
		}
	}
	return r, nil
}

// trimFloat formats v with at most prec decimals.
func trimFloat(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
