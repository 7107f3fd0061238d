// Command loadgen runs a load-test scenario (loadtest/scenarios/*.json, the
// files the k6 scripts read too) with the Go engine of package
// fastgate/loadtest: open model (constant or ramping arrival rate, latency
// from the intended start, dropped iterations counted) or closed model
// (VUs back to back).
//
//	loadgen -scenario loadtest/scenarios/load.json -target http://127.0.0.1:8080 [-json out.json]
//	loadgen -stack -bin bin -scenario loadtest/scenarios/upstream-failure.json
//
// With -stack it first starts the scenario's upstreams (bin/upstream) and
// the gateway (bin/fastgate) on free loopback ports, runs the scenario and
// its actions against them and stops them all. It prints a live progress
// line (plain lines when stdout is not a terminal) and a summary, and exits
// 1 when a threshold or an action failed, 2 on a usage or setup error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"fastgate/core/sysmon"
	"fastgate/loadtest"
)

func main() {
	sysmon.Tune() // the open model's waits woke it from deep sleep at every arrival
	os.Exit(run(os.Args[1:]))
}

// kv is a repeatable NAME=VALUE flag.
type kv map[string]string

func (m kv) String() string { return fmt.Sprint(map[string]string(m)) }

func (m kv) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want NAME=VALUE", s)
	}
	m[k] = v
	return nil
}

// run parses args, runs the scenario and returns the exit code.
func run(args []string) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	var (
		scenario = fs.String("scenario", "", "scenario file (JSON), e.g. loadtest/scenarios/load.json; required")
		jsonOut  = fs.String("json", "", "write the summary as JSON to this file")
		stack    = fs.Bool("stack", false, "start the scenario's upstreams and gateway from -bin, target the gateway, stop them after")
		bin      = fs.String("bin", "bin", "directory holding the fastgate and upstream binaries, for -stack")
		quiet    = fs.Bool("quiet", false, "no progress lines")
		timeline = fs.String("timeline", "", "write the run step by step as CSV to this file: per step, requests sent, connections opened, arrivals dropped, responses, failures, requests in flight, largest send lag and latency")
		tlStep   = fs.Duration("timeline-step", 10*time.Millisecond, "the step of -timeline")
		vars     = kv{}
		procs    = kv{}
		o        loadtest.Overrides
	)
	fs.StringVar(&o.Target, "target", "", "base URL overriding the scenario's target, e.g. http://127.0.0.1:8080")
	fs.DurationVar(&o.Duration, "duration", 0, "load phase length overriding the scenario's (ramping stages and action offsets scale)")
	fs.Float64Var(&o.Rate, "rate", 0, "arrival rate per second overriding the scenario's (ramping: the peak; stages scale)")
	fs.IntVar(&o.VUs, "vus", 0, "VUs overriding the scenario's (open model: pre-allocated and max)")
	fs.Var(vars, "var", "NAME=VALUE for {{NAME}} in action URLs, e.g. -var admin=http://127.0.0.1:9901 (repeatable)")
	fs.Var(procs, "proc", "NAME=PID: the process signal actions address by NAME, without -stack (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *scenario == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -scenario FILE is required and takes no arguments; see -h")
		return 2
	}
	sc, err := loadtest.Load(*scenario)
	if err == nil {
		err = o.Apply(sc)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 2
	}
	opts := loadtest.Options{Vars: vars}
	var tlFile *os.File
	if *timeline != "" {
		if err := loadtest.CheckTimelineStep(*tlStep, sc); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: -timeline-step", err)
			return 2
		}
		// Created before the run, so a path that cannot be written fails now.
		if tlFile, err = os.Create(*timeline); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: -timeline:", err)
			return 2
		}
		defer tlFile.Close() //nolint:errcheck // closed and checked after the run
		opts.TimelineStep = *tlStep
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	if !*quiet {
		opts.Progress, opts.ProgressTTY = os.Stdout, loadtest.IsTerminal(os.Stdout)
	}
	if len(procs) > 0 {
		p, err := newPidProcs(procs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: -proc", err)
			return 2
		}
		opts.Procs = p
	}
	var st *loadtest.RunningStack
	if *stack {
		if st, err = loadtest.StartStack(sc, *bin); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 2
		}
		sc.Target = st.Target
		for k, v := range st.Vars {
			if _, set := vars[k]; !set {
				vars[k] = v
			}
		}
		opts.Procs = st
		fmt.Printf("stack: gateway %s, upstreams %s\n", st.Target, upstreamList(st.Vars))
	}
	s := loadtest.Run(ctx, sc, opts)
	code := 0
	if st != nil {
		if err := st.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: stopping the stack:", err)
			code = 1
		}
	}
	s.Print(os.Stdout)
	if *jsonOut != "" {
		if err := s.WriteJSON(*jsonOut); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			return 2
		}
	}
	if tlFile != nil {
		err := s.Timeline.WriteCSV(tlFile)
		if err == nil {
			err = tlFile.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: -timeline:", err)
			return 2
		}
	}
	if !s.Pass {
		code = 1
	}
	return code
}

// upstreamList formats the upstream placeholders of a stack.
func upstreamList(vars map[string]string) string {
	var b []string
	for k, v := range vars {
		if name, ok := strings.CutPrefix(k, "upstream:"); ok {
			b = append(b, name+"="+v)
		}
	}
	return strings.Join(b, " ")
}

// pidProcs signals processes given by pid; it cannot start them.
type pidProcs map[string]int

// newPidProcs parses NAME=PID pairs.
func newPidProcs(m kv) (pidProcs, error) {
	p := pidProcs{}
	for k, v := range m {
		pid, err := strconv.Atoi(v)
		if err != nil || pid <= 1 {
			return nil, fmt.Errorf("%s=%s: want a process id", k, v)
		}
		p[k] = pid
	}
	return p, nil
}

func (p pidProcs) Signal(name, sig string) error {
	pid, ok := p[name]
	if !ok {
		return fmt.Errorf("no -proc %s=PID", name)
	}
	s, ok := loadtest.SignalByName(sig)
	if !ok {
		return fmt.Errorf("signal %q: unknown", sig)
	}
	return syscall.Kill(pid, s)
}

func (p pidProcs) Start(name string) error {
	return fmt.Errorf("start %s: only with -stack (loadgen did not start it)", name)
}
