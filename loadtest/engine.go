package loadtest

import (
	"context"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Options are the run-time settings of Run besides the scenario.
type Options struct {
	// Progress receives the live progress: one rewritten line when
	// ProgressTTY, a plain line every 5s otherwise; nil: none.
	Progress    io.Writer
	ProgressTTY bool
	// Vars are the {{placeholders}} of action URLs and bodies; Run adds
	// "target".
	Vars map[string]string
	// Procs executes signal and start actions; nil: those actions fail.
	Procs Procs
	// TimelineStep, when set, has the summary carry a Timeline of the run
	// in steps of it.
	TimelineStep time.Duration
}

// Procs controls the processes named by signal and start actions.
type Procs interface {
	Signal(process, signal string) error
	Start(process string) error
}

// Run runs sc against sc.Target until its load phase ends, then waits for
// the requests in flight (each bounded by sc.Timeout). Cancelling ctx ends
// the load early. The summary's Pass is false when a threshold or an
// action failed.
func Run(ctx context.Context, sc *Scenario, opts Options) Summary {
	r := newRunner(sc)
	if opts.TimelineStep > 0 {
		r.tl = newTimeline(opts.TimelineStep, sc.LoadDuration()+sc.Timeout.D()+time.Second)
	}
	vars := map[string]string{"target": strings.TrimSuffix(sc.Target, "/")}
	for k, v := range opts.Vars {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r.start = time.Now()
	acts := startActions(ctx, r.start, sc.Actions, vars, opts.Procs)
	prog := startProgress(ctx, r, opts)
	if sc.Executor == ConstantVUs {
		r.runClosed(ctx)
	} else {
		r.runOpen(ctx)
	}
	elapsed := time.Since(r.start)
	cancel()
	prog.Wait()

	var st Stats
	r.collect(&st)
	s := Summarize(&st, elapsed)
	s.Scenario, s.Executor, s.Target, s.Start = sc.Name, sc.Executor, sc.Target, r.start
	s.VUsMax = r.vuCount()
	s.Timeline = r.tl
	s.Actions = acts.wait()
	s.Thresholds = Evaluate(sc.Thresholds, &s)
	s.Pass = true
	for _, t := range s.Thresholds {
		s.Pass = s.Pass && t.Pass
	}
	for _, a := range s.Actions {
		s.Pass = s.Pass && a.OK
	}
	return s
}

// runner is the state of one Run.
type runner struct {
	sc    *Scenario
	hc    *fasthttp.HostClient // closed model
	host  string
	paths []string
	// pathTurn counts requests to take the paths in turn.
	pathTurn atomic.Uint64
	body     []byte
	expect   [maxStatus]bool
	start    time.Time

	mu      sync.Mutex // guards vus
	vus     []*vu      // closed model
	om      openModel
	addr    string // host:port to dial
	dropped atomic.Uint64
	tl      *Timeline    // nil: no timeline asked for
	lag     Histogram    // open model: dispatch lag, the dispatcher's own
	left    atomic.Int64 // closed model: requests left when Iterations > 0
	wg      sync.WaitGroup
}

// newRunner prepares the client and the request template of sc.
func newRunner(sc *Scenario) *runner {
	u, _ := url.Parse(sc.Target) // validated
	host := u.Host
	if u.Port() == "" {
		host += ":80"
	}
	r := &runner{sc: sc, host: u.Host, addr: host, paths: sc.Paths}
	r.body = []byte(sc.Body)
	if sc.BodySize > 0 {
		r.body = []byte(strings.Repeat("x", sc.BodySize))
	}
	if len(sc.Expect) == 0 {
		for s := 200; s < 400; s++ {
			r.expect[s] = true
		}
	}
	for _, s := range sc.Expect {
		r.expect[s] = true
	}
	if sc.Executor != ConstantVUs {
		r.initOpen()
		return r
	}
	r.hc = &fasthttp.HostClient{ // the closed model's VUs send through it
		Addr:                          host,
		Name:                          userAgent,
		MaxConns:                      sc.MaxVUs(),
		ReadTimeout:                   sc.Timeout.D(),
		WriteTimeout:                  sc.Timeout.D(),
		MaxIdemponentCallAttempts:     1, // a failure is counted, never hidden by a retry
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
	return r
}

// userAgent is the User-Agent of loadgen's requests.
const userAgent = "fastgate-loadgen"

// vu is one virtual user of the closed model: a goroutine with its own
// request, response and stats; it uses one connection of the pool at a
// time. The open model's VUs are connections (open.go).
type vu struct {
	r    *runner
	sh   shard
	req  fasthttp.Request
	resp fasthttp.Response
	path int
}

// newVU registers a new VU.
func (r *runner) newVU() *vu {
	v := &vu{r: r}
	req := &v.req
	req.Header.SetMethod(r.sc.Method)
	req.Header.SetHost(r.host)
	for k, val := range r.sc.Headers {
		req.Header.Set(k, val)
	}
	if len(r.body) > 0 {
		req.SetBodyRaw(r.body) // shared, never written
	}
	r.mu.Lock()
	v.path = len(r.vus) % len(r.paths)
	r.vus = append(r.vus, v)
	r.mu.Unlock()
	req.SetRequestURI(r.paths[v.path])
	return v
}

// nextPath returns the index of the path of the next request: one counter
// for all VUs (closed) or connections (open), so the paths are used in
// turn overall.
func (r *runner) nextPath() int {
	return int((r.pathTurn.Add(1) - 1) % uint64(len(r.paths)))
}

// do sends one request whose latency counts from from.
func (v *vu) do(from time.Time) time.Time {
	if len(v.r.paths) > 1 {
		v.path = v.r.nextPath()
		v.req.SetRequestURI(v.r.paths[v.path])
	}
	v.r.tl.sent(from.Sub(v.r.start), 0, false)
	err := v.r.hc.Do(&v.req, &v.resp)
	end := time.Now()
	v.r.tl.ended(end.Sub(v.r.start), end.Sub(from), err != nil)
	if err != nil {
		v.sh.recordError(end.Sub(from), err)
		return end
	}
	code := v.resp.StatusCode()
	ok := code > 0 && code < maxStatus && v.r.expect[code]
	v.sh.recordResponse(end.Sub(from), code, len(v.resp.Body()), ok)
	v.resp.Reset()
	return end
}

// runClosed runs VUs sending back to back until the duration ends or the
// iterations are used up.
func (r *runner) runClosed(ctx context.Context) {
	sc := r.sc
	r.left.Store(int64(sc.Iterations))
	deadline := r.start.Add(sc.Duration.D())
	for range sc.VUs {
		v := r.newVU()
		r.wg.Add(1)
		go v.loopClosed(ctx, deadline)
	}
	r.wg.Wait()
}

// loopClosed sends requests back to back; each starts when the previous
// one ended.
func (v *vu) loopClosed(ctx context.Context, deadline time.Time) {
	defer v.r.wg.Done()
	counted := v.r.sc.Iterations > 0
	now := time.Now()
	for now.Before(deadline) && ctx.Err() == nil {
		if counted && v.r.left.Add(-1) < 0 {
			return
		}
		now = v.do(now)
	}
}

// collect merges every VU's stats into dst.
func (r *runner) collect(dst *Stats) {
	r.mu.Lock()
	vus := slices.Clone(r.vus)
	r.mu.Unlock()
	for _, v := range vus {
		v.sh.addTo(dst)
	}
	r.om.cmu.Lock()
	shards := slices.Clone(r.om.shards)
	r.om.cmu.Unlock()
	for _, sh := range shards {
		sh.addTo(dst)
	}
	dst.Dropped += r.dropped.Load()
	dst.Lag.Merge(&r.lag)
}

// vuCount returns the number of VUs started: in the open model the
// pre-allocated ones, or the most connections open at once when more.
func (r *runner) vuCount() int {
	if r.sc.Executor != ConstantVUs {
		return max(r.sc.PreAllocatedVUs, int(r.om.peak.Load()))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.vus)
}
