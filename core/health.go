package core

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

// tickInterval is how often a health checker advances its upstream's lb.Set
// (lb.Set.Tick: ejections expire, EWMAs decay). An ejection lasts at most
// this much longer than configured.
const tickInterval = 250 * time.Millisecond

// healthChecker is the one goroutine of an upstream that probes its targets
// (health.active) and ticks its lb.Set, whether or not active checks are on.
// It outlives a snapshot when the next config keeps the upstream with the
// same active-check settings: attach points it at the newer upstream, whose
// targets keep their lb state, so a reload neither restarts probing nor
// resets thresholds.
//
// start and stop are safe for concurrent use and idempotent; the gateway
// starts the checkers of a snapshot when it becomes current and stops those
// the current snapshot no longer uses once the old one has drained.
type healthChecker struct {
	key    string // fingerprint of config.ActiveHealth
	active bool
	path   []byte
	host   []byte // probe Host header; nil: the target's host
	lo, hi int    // expected status range

	interval, jitter, timeout time.Duration

	up       atomic.Pointer[Upstream]
	started  atomic.Bool
	stopOnce sync.Once
	quit     chan struct{}
	done     chan struct{}
}

// newHealthChecker returns old's checker when its settings are those of u,
// else a new one, not started.
func newHealthChecker(up *Upstream, u *config.Upstream, old *Upstream) (*healthChecker, error) {
	a := &u.Health.Active
	key := fmt.Sprintf("%+v", *a)
	if old != nil && old.health != nil && old.health.key == key {
		return old.health, nil
	}
	h := &healthChecker{
		key:      key,
		active:   a.Enabled(),
		path:     []byte(a.Path),
		interval: a.Interval.D(),
		jitter:   a.Jitter.D(),
		timeout:  a.Timeout.D(),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if a.Host != "" {
		h.host = []byte(a.Host)
	}
	if h.active {
		var err error
		if h.lo, h.hi, err = config.ParseStatusRange(a.ExpectedStatus); err != nil {
			return nil, err
		}
	}
	h.up.Store(up)
	return h, nil
}

// start makes up the upstream h checks and starts its goroutine once.
func (h *healthChecker) start(up *Upstream, log *slog.Logger) {
	h.up.Store(up)
	up.metrics.live.Store(up)
	if h.started.CompareAndSwap(false, true) {
		healthGoroutines.Add(1) // here, not in run: counted before start returns
		go h.run(log)
	}
}

// stop ends the goroutine and waits for it. A checker never started stops
// at once.
func (h *healthChecker) stop() {
	h.stopOnce.Do(func() {
		close(h.quit)
		if h.started.Load() {
			<-h.done
		}
	})
}

// stopped reports whether stop was called.
func (h *healthChecker) stopped() bool {
	select {
	case <-h.quit:
		return true
	default:
		return false
	}
}

// healthGoroutines counts the running checkers, for leak tests.
var healthGoroutines atomic.Int64

func (h *healthChecker) run(log *slog.Logger) {
	// Counted out before done closes, so that the count is exact once stop
	// returns (defers run last first).
	defer close(h.done)
	defer healthGoroutines.Add(-1)
	tick := time.NewTicker(tickInterval)
	defer tick.Stop()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	var nextProbe time.Time // zero: probe at once
	panicked := false
	for {
		up := h.up.Load()
		now := time.Now()
		if h.active && !now.Before(nextProbe) {
			h.probeAll(up, req, resp)
			nextProbe = time.Now().Add(h.nextInterval())
		}
		up.set.Tick(time.Now().UnixNano())
		if p := up.set.Panic(); p != panicked {
			panicked = p
			logPanic(log, up, p)
		}
		select {
		case <-h.quit:
			return
		case <-tick.C:
		}
	}
}

// nextInterval is the interval ± a uniform share of the jitter.
func (h *healthChecker) nextInterval() time.Duration {
	if h.jitter <= 0 {
		return h.interval
	}
	return h.interval - h.jitter + rand.N(2*h.jitter+1)
}

// probeAll probes each target of up in turn, stopping early on stop.
func (h *healthChecker) probeAll(up *Upstream, req *fasthttp.Request, resp *fasthttp.Response) {
	for _, t := range up.targets {
		if h.stopped() {
			return
		}
		if ok, counted := h.probe(t, req, resp); counted {
			t.lb.ReportCheck(ok)
		}
	}
}

// probe sends one GET of the check path to t through its pool. counted is
// false when the pool was full: a busy target is not a failed one.
func (h *healthChecker) probe(t *target, req *fasthttp.Request, resp *fasthttp.Response) (ok, counted bool) {
	req.Reset()
	resp.Reset()
	host := h.host
	if host == nil {
		host = t.host
	}
	req.Header.SetHostBytes(host)
	req.SetRequestURIBytes(h.path)
	req.URI().SetHostBytes(host)
	if t.tls != nil {
		req.URI().SetScheme("https") // the HostClient checks it against IsTLS
	}
	req.Header.Set(fasthttp.HeaderUserAgent, "fastgate-health-check")
	err := t.hc.DoDeadline(req, resp, time.Now().Add(h.timeout))
	if errors.Is(err, fasthttp.ErrNoFreeConns) {
		return false, false
	}
	code := resp.StatusCode()
	return err == nil && code >= h.lo && code <= h.hi, true
}

func logPanic(log *slog.Logger, up *Upstream, on bool) {
	threshold := up.set.Options().PanicThreshold
	if on {
		log.Warn("upstream in panic mode: too few targets available, balancing over all of them",
			"upstream", up.name, "available", up.set.Available(), "targets", up.set.Len(), "panic_threshold_percent", threshold)
		return
	}
	log.Info("upstream left panic mode", "upstream", up.name, "available", up.set.Available(), "targets", up.set.Len())
}

// startHealth starts (or re-attaches) the health checkers of s's upstreams.
func (s *Snapshot) startHealth(log *slog.Logger) {
	for _, up := range s.upstreams {
		up.health.start(up, log)
		up.startTLS(log)
	}
}

// stopHealth stops the checkers of s that next does not use (all of them
// when next is nil).
func (s *Snapshot) stopHealth(next *Snapshot) {
	for name, up := range s.upstreams {
		if next != nil {
			if n := next.upstreams[name]; n != nil && n.health == up.health {
				continue
			}
		}
		up.health.stop()
	}
}
