// Command bench measures fastgate against nginx and HAProxy on loopback
// (`make bench`, or `go run ./bench` from the repository root).
//
// It builds fastgate, upstream and loadgen into a temporary directory
// (or uses -bin), starts one stub upstream (100-byte bodies), fastgate
// (GOMAXPROCS=1), nginx (1 worker) and HAProxy (nbthread 1) (-cores N: N
// each), each with
// keep-alive to the upstream and no logs (the generated configs say how
// they are equivalent; -keep keeps them). With -cores N > 1 one more row,
// fastgate-reuseport, is fastgate deployed the other way: N processes with
// GOMAXPROCS=1 sharing the port with -reuseport (SO_REUSEPORT), the
// kernel spreading the connections over them. For every workload of
// bench/workloads.json it drives each target with the same closed-model
// load from a separate loadgen process (-conns connections for -time),
// -repeat times interleaved (A B C A B C ...), then once with wrk when it
// is installed, as a cross-check. For each run it reads the CPU time of the
// proxy process (utime+stime, /proc/PID/stat; fastgate-reuseport's
// processes summed) before and after and divides it by the requests
// served; the direct row (generator -> upstream) shows the upstream's own
// CPU, the floor. With perf installed, one more run per target counts the
// proxy's system calls per request (perf stat on the syscall tracepoints
// of all its processes), the kernel work behind most of its CPU. The
// tables split the CPU into user and kernel time. Two more rows, only when
// -targets names them, are minimal Go proxies (floor.go): they show what
// fastgate's own work and Go's goroutine-per-connection model cost.
//
// After a workload's closed-model runs comes its open-model phase (issue
// 15: tail latency at a load every proxy sustains), for the workloads with
// an nginx or HAProxy row (-open-workloads names others; -open-load 0
// skips it): each proxy (not direct) is driven at one offered rate R,
// -open-load (0.4) times fastgate's median requests/s just measured, for
// -time, -repeat times interleaved. loadgen sends on a fixed schedule
// (constant-arrival-rate) and counts each latency from the request's
// scheduled send time, so a proxy that stalls is charged with the queue
// it builds instead of slowing the generator down (no coordinated
// omission); each VU is a keep-alive connection, opened when an arrival
// finds none idle, up to -open-max-vus (2000), and an arrival finding
// them all busy is counted as dropped. Each run records the achieved rate, p50/p99/p99.9, errors,
// dropped arrivals, loadgen's own send lag and the proxy's CPU per
// request at R. A row with dropped arrivals, or whose send lag is half its
// p99 or more, gets a warning: its tail is the generator's as much as the
// proxy's. The open model costs the generator several times what the
// closed model does per request (a wake-up per arrival), so on a small
// machine R may be more than generator, proxy and upstream sustain
// together; the warnings say so.
//
// Before the workloads comes the idle-connection phase (idle.go;
// -idle-conns 0 skips it): -idle-conns client connections held open on
// each of fastgate, nginx and HAProxy, each after one request, in two
// halves left idle -idle-settle each, and the growth of the proxy's
// resident memory per connection over the second half. Then the
// slow-clients phase (slow.go; -slow-clients 0 skips it): -slow-clients
// keep-alive connections each sending a GET every -slow-every (2.5s), and
// each proxy's CPU per request and resident memory over -slow-time, the
// proxies in turn, -repeat times.
//
// It prints one table per workload (medians, min–max spread, fastgate's
// and fastgate-reuseport's ratios to nginx and HAProxy), one more at R
// (with fastgate's p99 over nginx's and HAProxy's) when the open-model
// phase ran, and writes bench/results/DATE-COMMIT.json and .svg, plus
// latest.json, latest.md and latest.svg for the README; the open-model
// figures are the workloads' "open" objects in the JSON, absent without
// the phase, and are not charted.
//
// Environment: BENCH_TIME is the per-run duration (default 3s),
// BENCH_REPEAT the number of repeats (default 3); flags override them.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"fastgate/loadtest"
)

func main() {
	if spec := os.Getenv(floorEnv); spec != "" {
		if err := floorMain(spec, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the command line.
type config struct {
	bin        string
	runTime    time.Duration
	repeat     int
	conns      int
	gomaxprocs int
	cores      int
	syscalls   bool
	workloads  string
	only       string
	targets    string
	out        string
	pin        bool
	wrk        bool
	install    bool
	keep       bool
	// openLoad is the open-model phase's offered rate as a fraction of
	// fastgate's closed-model requests/s; 0: no phase.
	openLoad float64
	// openWorkloads names the workloads with the phase; empty: those
	// with an nginx or HAProxy row.
	openWorkloads string
	// openMaxVUs bounds the open model's VUs (connections in use).
	openMaxVUs int
	// idleConns is the idle-connection phase's connection count; 0: no
	// phase. idleSettle is how long each half stays idle.
	idleConns  int
	idleSettle time.Duration
	// slowClients is the slow-clients phase's connection count; 0: no
	// phase. Each sends a request every slowEvery; each run counts over
	// slowTime.
	slowClients         int
	slowEvery, slowTime time.Duration
	// pgo, when set, is where to write fastgate's CPU profile over the
	// workloads (pgo.go) instead of measuring.
	pgo string
}

// parseFlags reads the flags, with BENCH_TIME and BENCH_REPEAT as defaults.
func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runTime := 3 * time.Second
	if v := os.Getenv("BENCH_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("bench: BENCH_TIME=%q: want a per-run duration such as 3s", v)
		}
		runTime = d
	}
	repeat := 3
	if v := os.Getenv("BENCH_REPEAT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bench: BENCH_REPEAT=%q: want a count >= 1", v)
		}
		repeat = n
	}
	fs.StringVar(&c.bin, "bin", "", "directory with prebuilt fastgate, upstream and loadgen; empty: build them into a temporary directory")
	fs.DurationVar(&c.runTime, "time", runTime, "duration of one run (env BENCH_TIME)")
	fs.IntVar(&c.repeat, "repeat", repeat, "runs per target and workload, interleaved; the median is reported (env BENCH_REPEAT)")
	fs.IntVar(&c.conns, "conns", 64, "generator connections (closed model)")
	fs.IntVar(&c.cores, "cores", 1, "cores each proxy may use: nginx workers, HAProxy threads and fastgate's GOMAXPROCS; above 1 it adds the fastgate-reuseport row: that many fastgate processes with GOMAXPROCS=1 sharing the port (-reuseport)")
	fs.IntVar(&c.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS of fastgate; 0: -cores")
	fs.BoolVar(&c.syscalls, "syscalls", true, "after the measured runs, one more run per target under `perf stat` counting its syscalls per request, when perf is installed")
	fs.StringVar(&c.workloads, "workloads", "bench/workloads.json", "workloads file")
	fs.StringVar(&c.only, "only", "", "comma-separated workload names to run; empty: all")
	fs.StringVar(&c.targets, "targets", "", "comma-separated targets to run: direct, fastgate, fastgate-reuseport (only with -cores > 1), nginx, haproxy, and the floor rows floor-goroutine and floor-loop (minimal Go proxies, see bench/floor.go); empty: all but the floor rows")
	fs.StringVar(&c.out, "out", "bench/results", "results directory")
	fs.BoolVar(&c.pin, "pin", false, "pin the proxy (and upstream) to CPU 0 and the generator to CPU 1 with taskset")
	fs.BoolVar(&c.wrk, "wrk", true, "cross-check every target once with wrk when it is installed")
	fs.BoolVar(&c.install, "install", true, "install missing nginx/haproxy with apt-get when running as root")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (configs, logs, and each open-model run's timeline: timeline-WORKLOAD-TARGET-N.csv, loadgen -timeline) and print its path")
	fs.Float64Var(&c.openLoad, "open-load", 0.4, "after a workload's closed-model runs, drive each proxy in the open model at this fraction of fastgate's median requests/s (latency from the scheduled send time), -repeat runs interleaved; 0: no open-model phase. The default is what generator, proxy and upstream sustain together on one 2-core machine; with the generator on cores of its own, 0.7")
	fs.StringVar(&c.openWorkloads, "open-workloads", "", "comma-separated workloads with the open-model phase; empty: those with an nginx or haproxy row")
	fs.IntVar(&c.idleConns, "idle-conns", 2000, "client connections the idle-connection phase holds open on each of fastgate, nginx and HAProxy, before the workloads, to measure their resident memory per idle keep-alive connection; 0: no phase")
	fs.DurationVar(&c.idleSettle, "idle-settle", 2*time.Second, "how long each half of the idle-connection phase's connections stays idle before the memory is read (fastgate parks a connection idle for 1s)")
	fs.IntVar(&c.slowClients, "slow-clients", 1000, "keep-alive connections of the slow-clients phase, after the idle-connection phase: each sends a GET every -slow-every, and each proxy's CPU per request and resident memory are measured, -repeat runs in turn; 0: no phase")
	fs.DurationVar(&c.slowEvery, "slow-every", 2500*time.Millisecond, "how often each slow client sends its request (fastgate parks a connection idle for 1s)")
	fs.DurationVar(&c.slowTime, "slow-time", 8*time.Second, "how long each run of the slow-clients phase counts, after one period of -slow-every")
	fs.IntVar(&c.openMaxVUs, "open-max-vus", 2000, "most VUs (requests in flight, each on its own connection) of an open-model run; an arrival finding them all busy is dropped, its latency not counted. Lower keeps an overloaded generator from piling up connections, but hides the stalls the open model is there to count")
	fs.StringVar(&c.pgo, "pgo", "", "instead of measuring, write to this file a CPU profile of fastgate under each workload for -time, merged (make pgo: cmd/fastgate/default.pgo, which go build uses for profile-guided optimization)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.pgo != "" {
		// Only fastgate is profiled; nothing else is measured.
		c.targets, c.idleConns, c.slowClients, c.syscalls, c.wrk, c.openLoad = targetFastgate, 0, 0, false, false, 0
	}
	if c.repeat < 1 || c.conns < 1 || c.runTime <= 0 || c.cores < 1 || c.gomaxprocs < 0 {
		return nil, fmt.Errorf("bench: -repeat, -conns, -time and -cores must be positive")
	}
	if c.idleSettle < 0 {
		return nil, fmt.Errorf("bench: -idle-settle %s: want a duration of 0 or more", c.idleSettle)
	}
	if c.idleConns < 0 || c.idleConns > 3000 {
		return nil, fmt.Errorf("bench: -idle-conns %d: want 0 (no phase) to 3000 (nginx's and HAProxy's configs take 4096 connections)", c.idleConns)
	}
	if c.slowClients < 0 || c.slowClients > 3000 {
		return nil, fmt.Errorf("bench: -slow-clients %d: want 0 (no phase) to 3000 (nginx's and HAProxy's configs take 4096 connections)", c.slowClients)
	}
	if c.slowClients > 0 && (c.slowEvery <= 0 || c.slowEvery > time.Minute || c.slowTime <= 0) {
		return nil, fmt.Errorf("bench: -slow-every %s, -slow-time %s: want positive durations, -slow-every at most 1m (nginx's and HAProxy's keep-alive timeouts are 75s)", c.slowEvery, c.slowTime)
	}
	if c.openLoad < 0 || c.openLoad > 1 {
		return nil, fmt.Errorf("bench: -open-load %g: want a fraction of fastgate's saturation throughput, 0..1 (0: no open-model phase)", c.openLoad)
	}
	if c.openMaxVUs < c.conns || c.openMaxVUs > loadtest.MaxVUs {
		return nil, fmt.Errorf("bench: -open-max-vus %d: want -conns (%d) to %d", c.openMaxVUs, c.conns, loadtest.MaxVUs)
	}
	if c.gomaxprocs == 0 {
		c.gomaxprocs = c.cores
	}
	if c.pin && c.cores > 1 {
		return nil, fmt.Errorf("bench: -pin puts each proxy on one core; it does not go with -cores %d", c.cores)
	}
	if c.targets == "" {
		c.targets = strings.Join(targetsFor(c.cores), ",")
	}
	for _, t := range strings.Split(c.targets, ",") {
		t = strings.TrimSpace(t)
		switch {
		case t == targetReuseport && c.cores == 1:
			return nil, fmt.Errorf("bench: -targets %s runs -cores fastgate processes of one core each; it needs -cores 2 or more", t)
		case t != "" && !slices.Contains(allTargets, t):
			return nil, fmt.Errorf("bench: -targets: unknown target %q; want some of %s", t, strings.Join(allTargets, ","))
		}
	}
	return c, nil
}

func runMain(args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	b, err := newBench(c, stdout)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer b.close()
	if c.pgo != "" {
		if err := b.profile(c.pgo); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	res, err := b.run()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	res.printTables(stdout)
	files, err := res.write(c.out)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", strings.Join(files, ", "))
	return 0
}

// bench is one run of the harness.
type bench struct {
	cfg       *config
	out       io.Writer
	env       env
	workloads []workload
	upstream  *loadtest.Proc
	targets   map[string]*target // started targets by name
	wrk       string             // wrk's path, "" to skip the cross-check
	res       *results
	openRuns  int // open-model runs so far, numbering their kept timelines
}

// logf prints a harness message.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.out, "bench: "+format+"\n", args...)
}

// newBench prepares the directory and binaries and starts the targets.
func newBench(c *config, out io.Writer) (_ *bench, err error) {
	b := &bench{cfg: c, out: out, targets: map[string]*target{}}
	var only []string
	if c.only != "" {
		only = strings.Split(c.only, ",")
	}
	if b.workloads, err = loadWorkloads(c.workloads, only); err != nil {
		return nil, err
	}
	for _, name := range splitList(c.openWorkloads) {
		if !slices.ContainsFunc(b.workloads, func(w workload) bool { return w.Name == name }) {
			return nil, fmt.Errorf("bench: -open-workloads: %q is not among the workloads run (%s; see -only)", name, c.workloads)
		}
	}
	dir, err := os.MkdirTemp("", "fastgate-bench-")
	if err != nil {
		return nil, err
	}
	b.env = env{dir: dir, bin: c.bin, gomaxprocs: c.gomaxprocs, cores: c.cores, conns: c.conns, pin: c.pin}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if c.pin {
		if _, err := exec.LookPath("taskset"); err != nil {
			return nil, fmt.Errorf("bench: -pin needs taskset (util-linux)")
		}
	}
	if b.env.bin == "" {
		b.env.bin = filepath.Join(dir, "bin")
		b.logf("building fastgate, upstream, loadgen")
		if err := buildBinaries(b.env.bin); err != nil {
			return nil, err
		}
	}
	if c.wrk {
		if p, err := exec.LookPath("wrk"); err == nil {
			b.wrk = p
		} else {
			b.logf("wrk not installed: no wrk cross-check")
		}
	}
	b.res = newResults(c, b)
	if c.syscalls {
		if err := perfUsable(); err != nil {
			b.logf("no syscall counts: %s", err)
			b.res.Skipped = append(b.res.Skipped, "syscall counts: "+err.Error())
			c.syscalls = false
		}
	}
	return b, b.startTargets()
}

// buildBinaries builds the three binaries into dir.
func buildBinaries(dir string) error {
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"fastgate/cmd/fastgate", "fastgate/cmd/upstream", "fastgate/cmd/loadgen")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: go build: %w\n%s", err, out)
	}
	return nil
}

// wanted reports whether target name was asked for by -targets.
func (b *bench) wanted(name string) bool {
	return slices.Contains(splitList(b.cfg.targets), name)
}

// splitList returns the non-empty, space-trimmed items of a
// comma-separated flag.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// startTargets starts the upstream and every asked-for proxy.
func (b *bench) startTargets() error {
	p, err := b.env.startUpstream()
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b.upstream = p
	if b.wanted(targetDirect) {
		b.targets[targetDirect] = &target{name: targetDirect, url: "http://" + b.env.upstream, procs: []*loadtest.Proc{p}}
	}
	for _, name := range []string{targetFastgate, targetReuseport} {
		if !b.wanted(name) {
			continue
		}
		t, err := b.env.startFastgate(name, "", name == targetReuseport)
		if err != nil {
			return err
		}
		b.targets[name] = t
	}
	for _, name := range []string{targetNginx, targetHAProxy} {
		if !b.wanted(name) {
			continue
		}
		bin := findProxy(name, b.cfg.install, b.logf)
		if bin == "" {
			b.res.Skipped = append(b.res.Skipped, name+": not installed")
			continue
		}
		start := b.env.startNginx
		args := []string{"-v"}
		if name == targetHAProxy {
			start, args = b.env.startHAProxy, []string{"-vv"}
		}
		b.res.Versions[name] = versionOf(bin, args...)
		t, err := start(bin)
		if err != nil {
			return err
		}
		b.targets[name] = t
	}
	for _, name := range []string{targetFloorGoroutine, targetFloorLoop} {
		if !b.wanted(name) {
			continue
		}
		t, err := b.env.startFloor(name)
		if err != nil {
			return err
		}
		b.targets[name] = t
	}
	return nil
}

// close stops every process and removes the temporary directory unless -keep.
func (b *bench) close() {
	for _, t := range b.targets {
		t.stop()
	}
	if b.upstream != nil {
		b.upstream.Stop(5 * time.Second) //nolint:errcheck // a bench process
	}
	if b.cfg.keep {
		b.logf("kept %s", b.env.dir)
		return
	}
	os.RemoveAll(b.env.dir)
}

// run measures every workload.
func (b *bench) run() (*results, error) {
	total, open := 0, 0
	for i := range b.workloads {
		names := b.rowTargets(&b.workloads[i])
		total += len(names)
		if b.openWanted(&b.workloads[i], names) {
			open += len(openTargets(names))
		}
	}
	per := time.Duration(b.cfg.repeat)*b.cfg.runTime + b.cfg.runTime/4
	if b.cfg.syscalls {
		per += b.cfg.runTime
	}
	if b.wrk != "" {
		per += b.cfg.runTime.Round(time.Second)
	}
	est := time.Duration(total)*per + time.Duration(open*b.cfg.repeat)*b.cfg.runTime
	if b.cfg.slowClients > 0 {
		est += time.Duration(b.cfg.repeat*len(phaseTargets)) * (b.cfg.slowEvery*5/4 + b.cfg.slowTime + time.Second)
	}
	b.logf("%d workloads, %d rows (%d more in the open model), %d x %s runs each, about %s; others using the CPU skew the figures",
		len(b.workloads), total, open, b.cfg.repeat, b.cfg.runTime, est.Round(time.Second))
	if b.cfg.idleConns > 0 {
		if err := b.measureIdle(); err != nil {
			return nil, err
		}
	}
	if b.cfg.slowClients > 0 {
		if err := b.measureSlow(); err != nil {
			return nil, err
		}
	}
	for i := range b.workloads {
		if err := b.runWorkload(&b.workloads[i]); err != nil {
			return nil, err
		}
	}
	b.res.finish()
	return b.res, nil
}

// rowTargets returns the targets measured for w, in table order.
func (b *bench) rowTargets(w *workload) []string {
	var out []string
	for _, name := range allTargets {
		if b.targets[name] == nil {
			continue
		}
		for _, t := range w.Targets {
			if t == name {
				out = append(out, name)
			}
		}
	}
	return out
}

// runWorkload measures w on each of its targets, interleaved.
func (b *bench) runWorkload(w *workload) error {
	names := b.rowTargets(w)
	targets := make([]*target, len(names))
	width := 9 // of the name in the progress lines
	for i, name := range names {
		width = max(width, len(name))
		targets[i] = b.targets[name]
		if (name == targetFastgate || name == targetReuseport) && w.fastgateTmpl != "" {
			// fastgate-reuseport's processes each have their own cache
			// and limiters: cache-hit fills one cache per process.
			t, err := b.env.startFastgate(name+"-"+w.Name, w.fastgateTmpl, name == targetReuseport)
			if err != nil {
				return err
			}
			defer t.stop()
			targets[i] = t
		}
	}
	wr := b.res.workload(w)
	for _, t := range targets {
		// warm-up: connections, pools, caches; not measured.
		if _, err := b.measure(w, t, b.cfg.runTime/4); err != nil {
			return err
		}
	}
	for rep := range b.cfg.repeat {
		for i, t := range targets {
			r, err := b.measure(w, t, b.cfg.runTime)
			if err != nil {
				return err
			}
			b.logf("%-18s %-*s run %d/%d: %8.0f req/s  %6.2f µs CPU/req  p99 %.2fms  errors %d",
				w.Name, width, names[i], rep+1, b.cfg.repeat, r.RPS, r.CPUPerReq, r.P99, r.Errors)
			wr.row(names[i]).Runs = append(wr.row(names[i]).Runs, r)
		}
	}
	if err := b.runOpen(w, wr, names, targets, width); err != nil {
		return err
	}
	if b.cfg.syscalls {
		for i, t := range targets {
			sc, err := b.measureSyscalls(w, t, b.cfg.runTime)
			if err != nil {
				return err
			}
			wr.row(names[i]).Syscalls = sc
		}
	}
	if b.wrk == "" {
		return nil
	}
	for i, t := range targets {
		r, err := b.measureWrk(w, t, b.cfg.runTime)
		if err != nil {
			return err
		}
		wr.row(names[i]).Wrk = r
	}
	return nil
}

// openWanted reports whether w, measured on the targets names, gets the
// open-model phase: -open-load is set and w is named by -open-workloads
// or, when that is empty, has an nginx or HAProxy row to compare with.
func (b *bench) openWanted(w *workload, names []string) bool {
	if b.cfg.openLoad <= 0 {
		return false
	}
	if only := splitList(b.cfg.openWorkloads); len(only) > 0 {
		return slices.Contains(only, w.Name)
	}
	return slices.Contains(names, targetNginx) || slices.Contains(names, targetHAProxy)
}

// openTargets returns the targets of the open-model phase among names:
// the proxies, not direct nor the floor rows.
func openTargets(names []string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == targetDirect || isFloor(n) })
}

// runOpen is w's open-model phase, after its closed-model runs: each proxy
// among targets (named names) is driven at the same offered rate,
// -open-load times fastgate's median closed-model requests/s just
// measured, for -time, -repeat times interleaved like the closed runs.
// Below saturation a closed model hides queueing (a slow response delays
// the next request); arrivals on a fixed schedule, their latency counted
// from the scheduled send time, show the tail a proxy gives at a load it
// sustains (issue 15: p99 at 70% of fastgate's saturation).
func (b *bench) runOpen(w *workload, wr *workloadResult, names []string, targets []*target, width int) error {
	if !b.openWanted(w, names) {
		return nil
	}
	fg := wr.find(targetFastgate)
	if fg == nil {
		b.res.Skipped = append(b.res.Skipped, fmt.Sprintf("open model, %s: no fastgate row to take the rate from (-targets)", w.Name))
		return nil
	}
	rate, saturation := openRate(b.cfg.openLoad, fg.Runs)
	if rate <= 0 {
		b.res.Skipped = append(b.res.Skipped, fmt.Sprintf("open model, %s: fastgate served no requests to take the rate from", w.Name))
		return nil
	}
	s := &b.res.Settings
	s.OpenLoad = b.cfg.openLoad
	s.OpenGenerator = fmt.Sprintf("loadgen constant-arrival-rate, %d VUs counted from the start, up to %d (each a connection, opened as arrivals need it); latency from the scheduled send time; dropped: arrivals not sent, all VUs busy; send lag: loadgen's own lateness, part of the latencies",
		b.env.conns, b.cfg.openMaxVUs)
	o := wr.openPhase(b.cfg.openLoad, saturation, rate)
	o.MaxVUs = b.cfg.openMaxVUs
	for rep := range b.cfg.repeat {
		for i, t := range targets {
			if names[i] == targetDirect {
				continue
			}
			r, err := b.measureOpen(w, t, rate, b.cfg.runTime)
			if err != nil {
				return err
			}
			b.logf("%-18s %-*s open %d/%d: %8.0f of %.0f req/s  %6.2f µs CPU/req  p99 %.2fms  send lag p99 %.2fms  errors %d  dropped %d",
				w.Name, width, names[i], rep+1, b.cfg.repeat, r.RPS, rate, r.CPUPerReq, r.P99, r.SendLagP99, r.Errors, r.Dropped)
			o.row(names[i]).Runs = append(o.row(names[i]).Runs, r)
		}
	}
	return nil
}
