package loadtest

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// actionRun runs the actions of one Run in the background.
type actionRun struct {
	done    chan struct{}
	results []ActionResult
}

// wait returns the results once every action has run or been cancelled.
func (a *actionRun) wait() []ActionResult {
	<-a.done
	return a.results
}

// startActions runs acts in order of At, each at start+At. An action still
// waiting when ctx ends is reported as not run.
func startActions(ctx context.Context, start time.Time, acts []Action, vars map[string]string, procs Procs) *actionRun {
	a := &actionRun{done: make(chan struct{}), results: make([]ActionResult, len(acts))}
	order := make([]int, len(acts))
	for i := range order {
		order[i] = i
	}
	// stable by At: equal offsets keep file order.
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && acts[order[j]].At < acts[order[j-1]].At; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	go func() {
		defer close(a.done)
		for _, i := range order {
			act := &acts[i]
			res := &a.results[i]
			res.At, res.Name = act.At.D().String(), act.describe()
			t := time.NewTimer(time.Until(start.Add(act.At.D())))
			select {
			case <-ctx.Done():
				t.Stop()
				res.Error = "not run: the load ended first"
				continue
			case now := <-t.C:
				res.LateS = now.Sub(start.Add(act.At.D())).Seconds()
			}
			if err := act.run(vars, procs); err != nil {
				res.Error = err.Error()
			} else {
				res.OK = true
			}
		}
	}()
	return a
}

// describe returns the action's name or a description.
func (a *Action) describe() string {
	switch {
	case a.Name != "":
		return a.Name
	case a.HTTP != nil:
		return a.HTTP.Method + " " + a.HTTP.URL
	case a.Signal != nil:
		return "signal " + a.Signal.Name + " to " + a.Signal.Process
	case a.Start != nil:
		return "start " + a.Start.Process
	}
	return "?"
}

// run executes the action once.
func (a *Action) run(vars map[string]string, procs Procs) error {
	if a.HTTP != nil {
		return a.HTTP.run(vars)
	}
	if procs == nil {
		return fmt.Errorf("no process control: signal and start actions need `loadgen -stack` or -proc NAME=PID")
	}
	if a.Signal != nil {
		return procs.Signal(a.Signal.Process, a.Signal.Name)
	}
	return procs.Start(a.Start.Process)
}

// run sends the request and checks its status.
func (h *HTTPAction) run(vars map[string]string) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	u := Expand(h.URL, vars)
	if strings.Contains(u, "{{") {
		return fmt.Errorf("url %q: unknown placeholder; known: %s", u, varNames(vars))
	}
	req.SetRequestURI(u)
	req.Header.SetMethod(h.Method)
	for k, v := range h.Headers {
		req.Header.Set(k, Expand(v, vars))
	}
	req.SetBodyString(Expand(h.Body, vars))
	if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil {
		return fmt.Errorf("%s %s: %w", h.Method, u, err)
	}
	code := resp.StatusCode()
	ok := code >= 200 && code < 300
	if len(h.Expect) > 0 {
		ok = false
		for _, s := range h.Expect {
			ok = ok || s == code
		}
	}
	if !ok {
		return fmt.Errorf("%s %s: status %d: %.200s", h.Method, u, code, resp.Body())
	}
	return nil
}

// varNames lists the placeholders of vars.
func varNames(vars map[string]string) string {
	var b strings.Builder
	for k := range vars {
		b.WriteString(" {{" + k + "}}")
	}
	return b.String()
}

// signals are the signals actions may send.
var signals = map[string]syscall.Signal{
	"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "HUP": syscall.SIGHUP,
	"STOP": syscall.SIGSTOP, "CONT": syscall.SIGCONT, "USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
}

// SignalByName maps "KILL" or "SIGKILL" to the signal.
func SignalByName(name string) (syscall.Signal, bool) {
	s, ok := signals[strings.TrimPrefix(strings.ToUpper(name), "SIG")]
	return s, ok
}
