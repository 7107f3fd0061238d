package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results is everything one bench run measured; it is written as JSON.
type results struct {
	Date      string            `json:"date"`
	Commit    string            `json:"commit"`
	Go        string            `json:"go"`
	Kernel    string            `json:"kernel"`
	CPUs      int               `json:"cpus"`
	Settings  settings          `json:"settings"`
	Versions  map[string]string `json:"versions"`
	Skipped   []string          `json:"skipped"`
	Workloads []*workloadResult `json:"workloads"`
	// Idle is the idle-connection phase (-idle-conns), when it ran.
	Idle []*idleResult `json:"idle_connections,omitempty"`
	// Slow is the slow-clients phase (-slow-clients), when it ran.
	Slow *slowResult `json:"slow_clients,omitempty"`
}

// settings are the knobs of the run.
type settings struct {
	RunTimeS   float64 `json:"run_time_s"`
	Repeat     int     `json:"repeat"`
	Conns      int     `json:"conns"`
	GOMAXPROCS int     `json:"fastgate_gomaxprocs"`
	Cores      int     `json:"cores"` // nginx workers, HAProxy threads
	Pin        bool    `json:"pin"`
	Generator  string  `json:"generator"`
	CPUMetric  string  `json:"cpu_metric"`
	// OpenLoad is -open-load and OpenGenerator loadgen's open-model
	// settings, when some workload had the open-model phase.
	OpenLoad      float64 `json:"open_load,omitempty"`
	OpenGenerator string  `json:"open_generator,omitempty"`
}

// workloadResult is one workload's table.
type workloadResult struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Rows        []*row           `json:"rows"`
	Ratios      map[string]ratio `json:"ratios"` // fastgate over nginx / haproxy
	// ReuseportRatios are fastgate-reuseport's over nginx / haproxy, with
	// -cores > 1.
	ReuseportRatios map[string]ratio `json:"reuseport_ratios,omitempty"`
	// Open is the open-model phase (-open-load), when it ran.
	Open *openResult `json:"open,omitempty"`
}

// openResult is a workload's open-model phase: each proxy driven at the
// same offered rate, a fraction of fastgate's closed-model requests/s of
// the same bench run, latency counted from the scheduled send times.
type openResult struct {
	Load          float64 `json:"load"`                    // -open-load: fraction of fastgate's saturation
	SaturationRPS float64 `json:"fastgate_saturation_rps"` // fastgate's median closed-model requests/s
	OfferedRPS    float64 `json:"offered_rps"`             // Load × SaturationRPS, rounded; every row's rate
	MaxVUs        int     `json:"max_vus"`                 // -open-max-vus: beyond, arrivals are dropped
	Rows          []*row  `json:"rows"`
	// P99Ratios are fastgate's p99 over nginx's and HAProxy's at that
	// rate; ReuseportP99Ratios fastgate-reuseport's, with -cores > 1.
	P99Ratios          map[string]float64 `json:"p99_ratios,omitempty"`
	ReuseportP99Ratios map[string]float64 `json:"reuseport_p99_ratios,omitempty"`
	// P99ByRound and ReuseportP99ByRound are those ratios round by round.
	P99ByRound          map[string]*rounds `json:"p99_by_round,omitempty"`
	ReuseportP99ByRound map[string]*rounds `json:"reuseport_p99_by_round,omitempty"`
}

// row is one target's measurements of one workload.
type row struct {
	Target    string `json:"target"`
	Requests  uint64 `json:"requests"` // all measured runs
	Errors    uint64 `json:"errors"`
	RPS       stat   `json:"rps"`
	CPUPerReq stat   `json:"cpu_us_per_req"`
	// UserPerReq and SysPerReq split CPUPerReq (medians of each, so
	// they need not add up to its median exactly).
	UserPerReq stat    `json:"user_us_per_req"`
	SysPerReq  stat    `json:"sys_us_per_req"`
	P50        stat    `json:"p50_ms"`
	P99        stat    `json:"p99_ms"`
	P999       stat    `json:"p99_9_ms"`
	Runs       []run   `json:"runs"`
	Wrk        *wrkRun `json:"wrk,omitempty"`
	// Syscalls are counted in one more run, under perf (-syscalls).
	Syscalls *syscallCounts `json:"syscalls_per_req,omitempty"`
	// Dropped and SendLagP99 are the open model's (openResult's rows):
	// arrivals loadgen did not send, over all runs, and its own send lag.
	Dropped    uint64 `json:"dropped,omitempty"`
	SendLagP99 *stat  `json:"send_lag_p99_ms,omitempty"`
}

// stat is the median and spread of the repeats.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// ratio is fastgate's (or fastgate-reuseport's) figure divided by another
// proxy's.
type ratio struct {
	CPUPerReq float64 `json:"cpu_us_per_req"`
	RPS       float64 `json:"rps"`
	// CPUByRound is the CPU per request ratio of each round of the
	// interleaved runs, nil with fewer than two rounds.
	CPUByRound *rounds `json:"cpu_by_round,omitempty"`
}

// rounds pairs two targets' runs by round: run i of each was measured in
// the same pass over the targets, seconds apart, so the ratio of the pair
// leaves out what changed on the machine between passes, which the ratio
// of the medians keeps. stat is over the rounds' ratios; Lower counts the
// rounds whose ratio was below 1.
type rounds struct {
	stat
	Lower int `json:"lower"`
	Of    int `json:"of"`
}

// byRound returns f's ratio of a's runs over b's, round by round; nil
// with fewer than two rounds or a zero figure.
func byRound(a, b []run, f func(*run) float64) *rounds {
	n := min(len(a), len(b))
	if n < 2 {
		return nil
	}
	v := make([]float64, n)
	lower := 0
	for i := range n {
		x, y := f(&a[i]), f(&b[i])
		if y == 0 {
			return nil
		}
		if v[i] = x / y; v[i] < 1 {
			lower++
		}
	}
	return &rounds{stat: statOfValues(v), Lower: lower, Of: n}
}

// String formats r for a ratio line.
func (r *rounds) String() string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("; round by round ×%.2f (%.2f–%.2f), lower in %d of %d", r.Median, r.Min, r.Max, r.Lower, r.Of)
}

// newResults starts the results of a run with settings c.
func newResults(c *config, b *bench) *results {
	r := &results{
		Date:     time.Now().Format("2006-01-02"),
		Commit:   gitCommit(),
		Go:       runtime.Version(),
		Kernel:   strings.TrimSpace(readFirstLine("/proc/sys/kernel/osrelease")),
		CPUs:     runtime.NumCPU(),
		Versions: map[string]string{},
		Settings: settings{RunTimeS: c.runTime.Seconds(), Repeat: c.repeat, Conns: c.conns, GOMAXPROCS: c.gomaxprocs, Cores: c.cores,
			Pin: c.pin, Generator: fmt.Sprintf("loadgen, closed model, %d connections, separate process", c.conns),
			CPUMetric: "utime+stime of the proxy process (the upstream for direct) from /proc/PID/stat during the run, over requests served"},
		Skipped: []string{},
	}
	if c.cores > 1 && b.wanted(targetReuseport) {
		r.Settings.CPUMetric = "utime+stime of the proxy process (the upstream for direct, the sum over its processes for fastgate-reuseport) from /proc/PID/stat during the run, over requests served"
	}
	if b.wrk != "" {
		r.Versions["wrk"] = versionOf(b.wrk, "-v")
	}
	return r
}

// gitCommit returns the short commit, with -dirty when the tree has changes.
func gitCommit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=7", "--exclude", "*").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func readFirstLine(p string) string {
	b, _ := os.ReadFile(p)
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}

// workload returns the result of w, adding it on first use.
func (r *results) workload(w *workload) *workloadResult {
	for _, wr := range r.Workloads {
		if wr.Name == w.Name {
			return wr
		}
	}
	wr := &workloadResult{Name: w.Name, Description: w.Description, Ratios: map[string]ratio{}}
	r.Workloads = append(r.Workloads, wr)
	return wr
}

// row returns the row of target, adding it on first use.
func (wr *workloadResult) row(target string) *row {
	return addRow(&wr.Rows, target)
}

// find returns the row of target or nil.
func (wr *workloadResult) find(target string) *row {
	return findRow(wr.Rows, target)
}

// openPhase starts w's open-model phase at rate, load times fastgate's
// saturation requests/s.
func (wr *workloadResult) openPhase(load, saturation, rate float64) *openResult {
	wr.Open = &openResult{Load: load, SaturationRPS: saturation, OfferedRPS: rate}
	return wr.Open
}

// row returns the open-model row of target, adding it on first use.
func (o *openResult) row(target string) *row {
	return addRow(&o.Rows, target)
}

// addRow returns the row of target in *rows, appending it on first use.
func addRow(rows *[]*row, target string) *row {
	if rw := findRow(*rows, target); rw != nil {
		return rw
	}
	rw := &row{Target: target}
	*rows = append(*rows, rw)
	return rw
}

// findRow returns the row of target in rows or nil.
func findRow(rows []*row, target string) *row {
	for _, rw := range rows {
		if rw.Target == target {
			return rw
		}
	}
	return nil
}

// openRate returns the offered rate of the open-model phase: load times
// the median requests/s of fastgate's closed-model runs, in whole requests
// per second, and that median; the rate is 0 (no phase) when load is 0 or
// there are no runs.
func openRate(load float64, fastgate []run) (rate, saturation float64) {
	saturation = statOf(fastgate, func(x *run) float64 { return x.RPS }).Median
	if load <= 0 {
		return 0, saturation
	}
	return math.Round(load * saturation), saturation
}

// statOf returns the median and range of the values f picks from runs.
func statOf(runs []run, f func(*run) float64) stat {
	v := make([]float64, len(runs))
	for i := range runs {
		v[i] = f(&runs[i])
	}
	return statOfValues(v)
}

// statOfValues returns the median and range of v, which it sorts.
func statOfValues(v []float64) stat {
	if len(v) == 0 {
		return stat{}
	}
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{Median: m, Min: v[0], Max: v[len(v)-1]}
}

// finish computes the statistics and ratios.
func (r *results) finish() {
	for _, wr := range r.Workloads {
		for _, rw := range wr.Rows {
			rw.finish()
		}
		if o := wr.Open; o != nil {
			o.finish()
		}
	}
	for _, wr := range r.Workloads {
		wr.Ratios = addRatios(wr.Ratios, wr.find(targetFastgate), wr)
		wr.ReuseportRatios = addRatios(wr.ReuseportRatios, wr.find(targetReuseport), wr)
	}
	if r.Slow != nil {
		r.Slow.finish()
	}
}

// finish computes the row's totals and statistics over its runs.
func (rw *row) finish() {
	rw.Requests, rw.Errors, rw.Dropped = 0, 0, 0
	for _, x := range rw.Runs {
		rw.Requests += x.Requests
		rw.Errors += x.Errors
		rw.Dropped += x.Dropped
	}
	rw.RPS = statOf(rw.Runs, func(x *run) float64 { return x.RPS })
	rw.CPUPerReq = statOf(rw.Runs, func(x *run) float64 { return x.CPUPerReq })
	rw.UserPerReq = statOf(rw.Runs, func(x *run) float64 { return x.UserPerReq })
	rw.SysPerReq = statOf(rw.Runs, func(x *run) float64 { return x.SysPerReq })
	rw.P50 = statOf(rw.Runs, func(x *run) float64 { return x.P50 })
	rw.P99 = statOf(rw.Runs, func(x *run) float64 { return x.P99 })
	rw.P999 = statOf(rw.Runs, func(x *run) float64 { return x.P999 })
}

// finish computes the open-model rows' statistics and fastgate's (and
// fastgate-reuseport's) p99 ratios.
func (o *openResult) finish() {
	for _, rw := range o.Rows {
		rw.finish()
		lag := statOf(rw.Runs, func(x *run) float64 { return x.SendLagP99 })
		rw.SendLagP99 = &lag
	}
	o.P99Ratios, o.P99ByRound = o.p99Ratios(targetFastgate)
	o.ReuseportP99Ratios, o.ReuseportP99ByRound = o.p99Ratios(targetReuseport)
}

// p99Ratios returns target's median p99 over nginx's and HAProxy's, and
// the ratios round by round; nil when there is no such pair.
func (o *openResult) p99Ratios(target string) (m map[string]float64, byR map[string]*rounds) {
	fg := findRow(o.Rows, target)
	if fg == nil {
		return nil, nil
	}
	for _, other := range []string{targetNginx, targetHAProxy} {
		rw := findRow(o.Rows, other)
		if rw == nil || rw.P99.Median == 0 {
			continue
		}
		if m == nil {
			m, byR = map[string]float64{}, map[string]*rounds{}
		}
		m[other] = fg.P99.Median / rw.P99.Median
		if r := byRound(fg.Runs, rw.Runs, func(x *run) float64 { return x.P99 }); r != nil {
			byR[other] = r
		}
	}
	return m, byR
}

// addRatios adds fg's figures over base's nginx and HAProxy rows to m,
// made on first use, and returns m; fg nil (no such row) adds none.
func addRatios(m map[string]ratio, fg *row, base *workloadResult) map[string]ratio {
	if fg == nil {
		return m
	}
	for _, other := range []string{targetNginx, targetHAProxy} {
		o := base.find(other)
		if o == nil || o.CPUPerReq.Median == 0 || o.RPS.Median == 0 {
			continue
		}
		if m == nil {
			m = map[string]ratio{}
		}
		m[other] = ratio{CPUPerReq: fg.CPUPerReq.Median / o.CPUPerReq.Median, RPS: fg.RPS.Median / o.RPS.Median,
			CPUByRound: byRound(fg.Runs, o.Runs, func(x *run) float64 { return x.CPUPerReq })}
	}
	return m
}

// fmtStat formats a median with its range.
func fmtStat(s stat, prec int, single bool) string {
	if single || s.Min == s.Max {
		return fmtNum(s.Median, prec)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.Median, prec), fmtNum(s.Min, prec), fmtNum(s.Max, prec))
}

// fmtNum formats v with prec decimals and thousands separators.
func fmtNum(v float64, prec int) string {
	s := fmt.Sprintf("%.*f", prec, v)
	intPart, frac, _ := strings.Cut(s, ".")
	var b []byte
	for i, c := range []byte(intPart) {
		if i > 0 && (len(intPart)-i)%3 == 0 && intPart[i-1] != '-' {
			b = append(b, ',')
		}
		b = append(b, c)
	}
	if frac != "" {
		b = append(append(b, '.'), frac...)
	}
	return string(b)
}

// tableRows returns the header and cells of a workload's table.
func (r *results) tableRows(wr *workloadResult) ([]string, [][]string) {
	single := r.Settings.Repeat == 1
	head := []string{"target", "requests/s", "CPU µs / request", "user / kernel µs", "p50 ms", "p99 ms", "p99.9 ms", "errors"}
	hasWrk := false
	for _, rw := range wr.Rows {
		hasWrk = hasWrk || rw.Wrk != nil
	}
	if hasWrk {
		head = append(head, "wrk req/s", "wrk µs/req", "wrk p99 ms")
	}
	var rows [][]string
	for _, rw := range wr.Rows {
		split := fmtNum(rw.UserPerReq.Median, 1) + " / " + fmtNum(rw.SysPerReq.Median, 1)
		cells := []string{r.targetLabel(rw.Target), fmtStat(rw.RPS, 0, single), fmtStat(rw.CPUPerReq, 1, single), split,
			fmtStat(rw.P50, 2, single), fmtStat(rw.P99, 2, single), fmtStat(rw.P999, 2, single), fmtNum(float64(rw.Errors), 0)}
		if hasWrk {
			if w := rw.Wrk; w != nil {
				cells = append(cells, fmtNum(w.RPS, 0), fmtNum(w.CPUPerReq, 1), fmtNum(w.P99, 2))
			} else {
				cells = append(cells, "-", "-", "-")
			}
		}
		rows = append(rows, cells)
	}
	return head, rows
}

// targetLabel returns the name of target in the tables.
func (r *results) targetLabel(target string) string {
	switch target {
	case targetDirect:
		return "direct (upstream CPU)"
	case targetReuseport:
		return fmt.Sprintf("fastgate-reuseport (%d × GOMAXPROCS=1)", r.Settings.Cores)
	case targetFloorGoroutine:
		return "floor-goroutine (minimal Go proxy, not a gateway)"
	case targetFloorLoop:
		return "floor-loop (minimal Go epoll proxy, not a gateway)"
	}
	return target
}

// openTableRows returns the header and cells of a workload's open-model
// table.
func (r *results) openTableRows(o *openResult) ([]string, [][]string) {
	single := r.Settings.Repeat == 1
	head := []string{"target", "offered req/s", "achieved req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "dropped",
		"CPU µs / request", "send lag p99 ms"}
	var rows [][]string
	for _, rw := range o.Rows {
		lag := "-"
		if rw.SendLagP99 != nil {
			lag = fmtNum(rw.SendLagP99.Median, 2)
		}
		rows = append(rows, []string{r.targetLabel(rw.Target), fmtNum(o.OfferedRPS, 0), fmtStat(rw.RPS, 0, single),
			fmtStat(rw.P50, 2, single), fmtStat(rw.P99, 2, single), fmtStat(rw.P999, 2, single),
			fmtNum(float64(rw.Errors), 0), fmtNum(float64(rw.Dropped), 0), fmtStat(rw.CPUPerReq, 1, single), lag})
	}
	return head, rows
}

// title returns the heading of the open-model table.
func (o *openResult) title() string {
	return fmt.Sprintf("at %s req/s offered (%s%% of fastgate's saturation, %s req/s)", fmtNum(o.OfferedRPS, 0),
		trimFloat(o.Load*100, 1), fmtNum(o.SaturationRPS, 0))
}

// ratioLines describes fastgate's (and fastgate-reuseport's) p99 over
// nginx's and HAProxy's at the offered rate, then warns of the rows whose
// tail the generator may have set.
func (o *openResult) ratioLines() []string {
	var out []string
	for _, fg := range []struct {
		target string
		m      map[string]float64
		byR    map[string]*rounds
	}{{targetFastgate, o.P99Ratios, o.P99ByRound}, {targetReuseport, o.ReuseportP99Ratios, o.ReuseportP99ByRound}} {
		for _, other := range []string{targetNginx, targetHAProxy} {
			v, ok := fg.m[other]
			if !ok {
				continue
			}
			l := fmt.Sprintf("%s p99 / %s p99: ×%.2f%s", fg.target, other, v, fg.byR[other])
			if findRow(o.Rows, fg.target).generatorWarning(o.MaxVUs) != "" || findRow(o.Rows, other).generatorWarning(o.MaxVUs) != "" {
				l += " (not the proxies' alone: see the warnings)"
			}
			out = append(out, l)
		}
	}
	for _, rw := range o.Rows {
		if w := rw.generatorWarning(o.MaxVUs); w != "" {
			out = append(out, "warning: "+rw.Target+": "+w)
		}
	}
	return out
}

// generatorWarning says why the generator may have set an open-model
// row's tail, "" when it did not: arrivals were dropped (their latency
// is in no percentile, and loadgen ran maxVUs requests behind), or
// loadgen's own send lag, part of every latency, is half the p99 or more.
func (rw *row) generatorWarning(maxVUs int) string {
	lag := 0.0
	if rw.SendLagP99 != nil {
		lag = rw.SendLagP99.Median
	}
	switch {
	case rw.Dropped > 0:
		return fmt.Sprintf("%s arrivals dropped, all %d VUs busy (loadgen's send lag p99 %s ms): the percentiles leave them out; "+
			"generator, proxy and upstream may not sustain this rate together on this machine (-pin, fewer other processes, or a lower -open-load)",
			fmtNum(float64(rw.Dropped), 0), maxVUs, fmtNum(lag, 2))
	case rw.P99.Median > 0 && lag >= rw.P99.Median/2:
		return fmt.Sprintf("loadgen's own send lag p99 %s ms is %.0f%% of the p99: the generator, not the proxy, sets this tail",
			fmtNum(lag, 2), 100*lag/rw.P99.Median)
	}
	return ""
}

// syscallLines lists the targets' syscalls per request, when counted.
func (wr *workloadResult) syscallLines() []string {
	var out []string
	for _, rw := range wr.Rows {
		if rw.Syscalls != nil {
			out = append(out, fmt.Sprintf("syscalls per request, %s: %s", rw.Target, rw.Syscalls))
		}
	}
	return out
}

// ratioLines describes fastgate's (and fastgate-reuseport's) ratios of a
// workload.
func (wr *workloadResult) ratioLines() []string {
	out := appendRatioLines(nil, targetFastgate, wr.Ratios)
	return appendRatioLines(out, targetReuseport, wr.ReuseportRatios)
}

// appendRatioLines appends a line per ratio of m, target's over nginx and
// HAProxy.
func appendRatioLines(dst []string, target string, m map[string]ratio) []string {
	for _, other := range []string{targetNginx, targetHAProxy} {
		rt, ok := m[other]
		if !ok {
			continue
		}
		dst = append(dst, fmt.Sprintf("%s / %s: CPU µs per request ×%.2f, requests/s ×%.2f%s", target, other, rt.CPUPerReq, rt.RPS, rt.CPUByRound))
	}
	return dst
}

// printTables prints one aligned table per workload.
func (r *results) printTables(w io.Writer) {
	fmt.Fprintf(w, "\nfastgate bench %s %s: %d connections, %s runs, median of %d (min–max), fastgate GOMAXPROCS=%d, nginx workers and HAProxy threads %d, pin=%v\n",
		r.Date, r.Commit, r.Settings.Conns, time.Duration(r.Settings.RunTimeS*float64(time.Second)), r.Settings.Repeat,
		r.Settings.GOMAXPROCS, max(r.Settings.Cores, 1), r.Settings.Pin)
	if r.firstOpen() != nil {
		fmt.Fprintf(w, "open model: %s\n", r.Settings.OpenGenerator)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "skipped: %s\n", s)
	}
	for _, wr := range r.Workloads {
		fmt.Fprintf(w, "\n%s — %s\n", wr.Name, wr.Description)
		head, rows := r.tableRows(wr)
		printTable(w, head, rows)
		for _, l := range append(wr.ratioLines(), wr.syscallLines()...) {
			fmt.Fprintf(w, "  %s\n", l)
		}
		o := wr.Open
		if o == nil {
			continue
		}
		fmt.Fprintf(w, "\n%s %s — open model, latency from the scheduled send time\n", wr.Name, o.title())
		head, rows = r.openTableRows(o)
		printTable(w, head, rows)
		for _, l := range o.ratioLines() {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	if len(r.Idle) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.ReplaceAll(r.idleTitle(), "**", ""))
		head, rows := r.idleTableRows()
		printTable(w, head, rows)
	}
	if r.Slow != nil {
		fmt.Fprintf(w, "\n%s\n", strings.ReplaceAll(r.slowTitle(), "**", ""))
		head, rows := r.slowTableRows()
		printTable(w, head, rows)
		for _, l := range r.slowRatioLines() {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// printTable prints head and rows aligned: the first column to the left,
// the others to the right.
func printTable(w io.Writer, head []string, rows [][]string) {
	widths := make([]int, len(head))
	for i, h := range head {
		widths[i] = len([]rune(h))
	}
	for _, cells := range rows {
		for i, c := range cells {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	line := func(cells []string) {
		for i, c := range cells {
			pad := widths[i] - len([]rune(c))
			if i == 0 {
				fmt.Fprintf(w, "  %s%s", c, strings.Repeat(" ", pad))
			} else {
				fmt.Fprintf(w, "  %s%s", strings.Repeat(" ", pad), c)
			}
		}
		fmt.Fprintln(w)
	}
	line(head)
	for _, cells := range rows {
		line(cells)
	}
}

// hasRow reports whether some workload has a row of target.
func (r *results) hasRow(target string) bool {
	for _, wr := range r.Workloads {
		if wr.find(target) != nil {
			return true
		}
	}
	return false
}

// markdown returns the tables as Markdown, for the README.
func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- generated by `make bench` (go run ./bench); do not edit -->\n")
	cores := max(r.Settings.Cores, 1)
	fmt.Fprintf(&b, "Measured %s at %s, %d CPUs, %s: loadgen with %d connections, %gs per run, median of %d interleaved runs (min–max); fastgate GOMAXPROCS=%d, nginx %d worker(s), HAProxy nbthread %d; CPU µs / request is the proxy process's utime+stime over requests served. Syscalls per request come from one more run per target under `perf stat` (syscall tracepoints).",
		r.Date, r.Commit, r.CPUs, r.Go, r.Settings.Conns, r.Settings.RunTimeS, r.Settings.Repeat, r.Settings.GOMAXPROCS, cores, cores)
	if r.hasRow(targetReuseport) {
		fmt.Fprintf(&b, " fastgate-reuseport is %d fastgate processes with GOMAXPROCS=1 sharing the port (-reuseport, SO_REUSEPORT); its CPU and syscalls are the sums over them.", cores)
	}
	if o := r.firstOpen(); o != nil {
		fmt.Fprintf(&b, " The second table of a workload drives each proxy at one offered rate, %s%% of fastgate's median requests/s in the first (open model: %s).",
			trimFloat(o.Load*100, 1), r.Settings.OpenGenerator)
	}
	b.WriteString("\n")
	for _, wr := range r.Workloads {
		fmt.Fprintf(&b, "\n**%s** — %s\n\n", wr.Name, wr.Description)
		head, rows := r.tableRows(wr)
		writeMarkdownTable(&b, head, rows)
		writeMarkdownList(&b, append(wr.ratioLines(), wr.syscallLines()...))
		if o := wr.Open; o != nil {
			fmt.Fprintf(&b, "\n**%s** %s — open model, latency from the scheduled send time\n\n", wr.Name, o.title())
			head, rows := r.openTableRows(o)
			writeMarkdownTable(&b, head, rows)
			writeMarkdownList(&b, o.ratioLines())
		}
	}
	if len(r.Idle) > 0 {
		fmt.Fprintf(&b, "\n%s\n\n", r.idleTitle())
		head, rows := r.idleTableRows()
		writeMarkdownTable(&b, head, rows)
	}
	if r.Slow != nil {
		fmt.Fprintf(&b, "\n%s\n\n", r.slowTitle())
		head, rows := r.slowTableRows()
		writeMarkdownTable(&b, head, rows)
		writeMarkdownList(&b, r.slowRatioLines())
	}
	return b.String()
}

// firstOpen returns the first workload's open-model phase, or nil when
// none had one.
func (r *results) firstOpen() *openResult {
	for _, wr := range r.Workloads {
		if wr.Open != nil {
			return wr.Open
		}
	}
	return nil
}

// writeMarkdownTable writes head and rows as a Markdown table, numbers
// right-aligned.
func writeMarkdownTable(b *strings.Builder, head []string, rows [][]string) {
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for i := range head {
		if i == 0 {
			b.WriteString("---|")
		} else {
			b.WriteString("---:|")
		}
	}
	b.WriteString("\n")
	for _, cells := range rows {
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
}

// writeMarkdownList writes lines as a Markdown list after a blank line,
// nothing when there are none.
func writeMarkdownList(b *strings.Builder, lines []string) {
	for _, l := range lines {
		fmt.Fprintf(b, "\n- %s", l)
	}
	if len(lines) > 0 {
		b.WriteString("\n")
	}
}

// write writes DATE-COMMIT.json and .svg and latest.{json,md,svg} into dir.
func (r *results) write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	js = append(js, '\n')
	svg := r.svg()
	base := r.Date + "-" + r.Commit
	files := map[string][]byte{
		base + ".json": js, base + ".svg": svg,
		"latest.json": js, "latest.svg": svg, "latest.md": []byte(r.markdown()),
	}
	var names []string
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		names = append(names, p)
	}
	slices.Sort(names)
	return names, nil
}
