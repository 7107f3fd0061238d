package core

import (
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"fastgate/lb"
)

// Metric names (README "Metrics"). Labels are route, upstream and target
// names from the config, never raw paths, so the series count is bounded by
// the config.
const (
	metricRequests         = "fastgate_requests_total"
	metricRequestDuration  = "fastgate_request_duration_seconds"
	metricUpstreamRequests = "fastgate_upstream_requests_total"
	metricUpstreamDuration = "fastgate_upstream_duration_seconds"
	metricInflight         = "fastgate_inflight_requests"
	metricReloads          = "fastgate_config_reloads_total"
	metricAccessLogLines   = "fastgate_access_log_lines_total"
	metricAccessLogDropped = "fastgate_access_log_dropped_total"
	metricWebSocketOpen    = "fastgate_websocket_connections"
	metricWebSocketTotal   = "fastgate_websocket_connections_total"

	metricUpstreamHealthy   = "fastgate_upstream_healthy"
	metricUpstreamEjections = "fastgate_upstream_ejections_total"
	metricUpstreamPanic     = "fastgate_upstream_panic"
	metricUpstreamRetries   = "fastgate_upstream_retries_total"
	metricBudgetExhausted   = "fastgate_upstream_retry_budget_exhausted_total"
	metricBreakerRejected   = "fastgate_upstream_breaker_rejected_total"
)

// unmatchedRoute labels requests that matched no route (404, 405) or could
// not be parsed (400, 413, 431, 408).
const unmatchedRoute = "_unmatched"

// durationBuckets are the classic `le` bounds of the latency histograms, in
// seconds: fine below a millisecond, where a gateway's own time is, up to
// the default 30s timeout.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// Metrics is the gateway's metric set. Series for a route, upstream or
// target are created once, reused by every snapshot that has the same name,
// and unregistered when a reload removes the name and the last snapshot
// using it has drained. It is safe for concurrent use.
type Metrics struct {
	set *metrics.Set

	mu        sync.Mutex
	routes    map[string]*routeMetrics
	upstreams map[string]*upstreamMetrics
	// series counts the feature instances using each feature series.
	series map[string]int

	reloadsOK, reloadsError *metrics.Counter
}

func newMetrics(inflight func() float64) *Metrics {
	m := &Metrics{
		set:       metrics.NewSet(),
		routes:    make(map[string]*routeMetrics),
		upstreams: make(map[string]*upstreamMetrics),
		series:    make(map[string]int),
	}
	m.set.NewGauge(metricInflight, inflight)
	m.reloadsOK = m.set.NewCounter(metricReloads + `{result="ok"}`)
	m.reloadsError = m.set.NewCounter(metricReloads + `{result="error"}`)
	return m
}

// Set returns the underlying metric set, for /metrics and for features that
// add their own series.
func (m *Metrics) Set() *metrics.Set { return m.set }

// CountReload counts a config reload by its result.
func (m *Metrics) CountReload(ok bool) {
	if ok {
		m.reloadsOK.Inc()
	} else {
		m.reloadsError.Inc()
	}
}

// Reloads returns the counts of successful and failed reloads.
func (m *Metrics) Reloads() (ok, failed uint64) { return m.reloadsOK.Get(), m.reloadsError.Get() }

// acquireSeries counts one more user of a feature's series name (created
// by the caller).
func (m *Metrics) acquireSeries(name string) {
	m.mu.Lock()
	m.series[name]++
	m.mu.Unlock()
}

// releaseSeries counts one user less of each of names and unregisters the
// series no instance uses any more.
func (m *Metrics) releaseSeries(names []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range names {
		if m.series[n]--; m.series[n] <= 0 {
			delete(m.series, n)
			m.set.UnregisterMetric(n)
		}
	}
}

// route returns the series of the route named name, creating them once.
func (m *Metrics) route(name string) *routeMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	rm := m.routes[name]
	if rm == nil {
		rm = &routeMetrics{set: m.set, label: `route="` + name + `"`}
		rm.duration = rm.histogram(metricRequestDuration)
		rm.codes = codeCounters{set: m.set, prefix: metricRequests + "{" + rm.label + `,code="`, method: true}
		m.routes[name] = rm
	}
	return rm
}

// upstream returns the series of the upstream named name.
func (m *Metrics) upstream(name string) *upstreamMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	um := m.upstreams[name]
	if um == nil {
		um = &upstreamMetrics{label: `upstream="` + name + `"`}
		um.set = m.set
		um.duration = m.set.GetOrCreatePrometheusHistogramExt(metricUpstreamDuration+"{"+um.label+"}", durationBuckets)
		um.names = append(um.names, metricUpstreamDuration+"{"+um.label+"}")
		um.retries = um.counter(metricUpstreamRetries + "{" + um.label + "}")
		um.budgetExhausted = um.counter(metricBudgetExhausted + "{" + um.label + "}")
		um.breakerRequests = um.counter(metricBreakerRejected + "{" + um.label + `,limit="max_requests"}`)
		um.breakerPending = um.counter(metricBreakerRejected + "{" + um.label + `,limit="max_pending"}`)
		um.gauge(metricUpstreamPanic+"{"+um.label+"}", func() float64 {
			if up := um.live.Load(); up != nil && up.set.Panic() {
				return 1
			}
			return 0
		})
		um.targets = make(map[string]*targetMetrics)
		m.upstreams[name] = um
	}
	return um
}

// target returns the per-code request counters of one target of upstream,
// and registers its health gauges over lbt.
func (m *Metrics) target(upstream, addr string, lbt *lb.Target) *codeCounters {
	um := m.upstream(upstream)
	m.mu.Lock()
	defer m.mu.Unlock()
	tm := um.targets[addr]
	if tm == nil {
		label := um.label + `,target="` + addr + `"`
		tm = &targetMetrics{codes: codeCounters{set: m.set, prefix: metricUpstreamRequests + "{" + label + `,code="`}}
		tm.names = []string{metricUpstreamHealthy + "{" + label + "}", metricUpstreamEjections + "{" + label + "}"}
		m.set.GetOrCreateGauge(tm.names[0], func() float64 {
			if t := tm.lb.Load(); t != nil && t.Available() {
				return 1
			}
			return 0
		})
		m.set.GetOrCreateGauge(tm.names[1], func() float64 {
			if t := tm.lb.Load(); t != nil {
				return float64(t.Ejections())
			}
			return 0
		})
		um.targets[addr] = tm
	}
	tm.lb.Store(lbt)
	return &tm.codes
}

// retain unregisters the series of routes, upstreams and targets that s
// does not use. It runs when an older snapshot has drained; s is the
// snapshot serving then.
func (m *Metrics) retain(s *Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, rm := range m.routes {
		if !s.hasRoute(name) {
			rm.unregister()
			delete(m.routes, name)
		}
	}
	for name, um := range m.upstreams {
		up := s.upstreams[name]
		if up == nil {
			um.unregister()
			delete(m.upstreams, name)
			continue
		}
		for addr, tm := range um.targets {
			if !up.hasTarget(addr) {
				tm.unregister(m.set)
				delete(um.targets, addr)
			}
		}
	}
}

// routeMetrics are a route's series: requests by method and code, and the
// latency histogram.
type routeMetrics struct {
	set      *metrics.Set
	label    string
	duration *metrics.PrometheusHistogram
	codes    codeCounters
	names    []string
}

// observe counts one finished request.
func (rm *routeMetrics) observe(method uint16, status int, seconds float64) {
	rm.codes.inc(method, status)
	rm.duration.Update(seconds)
}

func (rm *routeMetrics) histogram(name string) *metrics.PrometheusHistogram {
	full := name + "{" + rm.label + "}"
	rm.names = append(rm.names, full)
	return rm.set.GetOrCreatePrometheusHistogramExt(full, durationBuckets)
}

func (rm *routeMetrics) unregister() {
	for _, n := range rm.names {
		rm.set.UnregisterMetric(n)
	}
	rm.codes.unregister()
}

// upstreamMetrics are an upstream's latency histogram, resilience counters
// and gauges, and its targets' series.
type upstreamMetrics struct {
	set      *metrics.Set
	label    string
	duration *metrics.PrometheusHistogram
	names    []string
	targets  map[string]*targetMetrics // by target address

	retries, budgetExhausted        *metrics.Counter
	breakerRequests, breakerPending *metrics.Counter
	// live is the upstream of the current snapshot, which gauges read.
	live atomic.Pointer[Upstream]
}

func (um *upstreamMetrics) counter(name string) *metrics.Counter {
	um.names = append(um.names, name)
	return um.set.GetOrCreateCounter(name)
}

func (um *upstreamMetrics) gauge(name string, f func() float64) {
	um.names = append(um.names, name)
	um.set.GetOrCreateGauge(name, f)
}

func (um *upstreamMetrics) unregister() {
	for _, n := range um.names {
		um.set.UnregisterMetric(n)
	}
	for _, tm := range um.targets {
		tm.unregister(um.set)
	}
}

// targetMetrics are a target's request counters by code and its health
// gauges, which read its lb state.
type targetMetrics struct {
	codes codeCounters
	lb    atomic.Pointer[lb.Target]
	names []string
}

func (tm *targetMetrics) unregister(set *metrics.Set) {
	tm.codes.unregister()
	for _, n := range tm.names {
		set.UnregisterMetric(n)
	}
}

// codeCounters are counters by (method, status code), created on first
// use. The lookup is a linear scan of a copy-on-write slice: a route sees a
// handful of pairs, and the hot path takes no lock and allocates nothing
// once a pair exists.
type codeCounters struct {
	set    *metrics.Set
	prefix string // name up to the opening quote of the last label value
	method bool   // counters carry a method label (requests), or not (upstream)

	list atomic.Pointer[[]codeCounter]
	mu   sync.Mutex
}

type codeCounter struct {
	key  uint32 // method index << 16 | status
	c    *metrics.Counter
	name string
}

// inc counts one request with the given method bit and status.
func (cc *codeCounters) inc(method uint16, status int) {
	key := uint32(methodIndex(method))<<16 | uint32(uint16(status))
	if l := cc.list.Load(); l != nil {
		for i := range *l {
			if (*l)[i].key == key {
				(*l)[i].c.Inc()
				return
			}
		}
	}
	cc.slowInc(key, method, status)
}

// slowInc creates the counter of a new (method, status) pair.
func (cc *codeCounters) slowInc(key uint32, method uint16, status int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var l []codeCounter
	if p := cc.list.Load(); p != nil {
		l = *p
	}
	for _, e := range l {
		if e.key == key {
			e.c.Inc()
			return
		}
	}
	name := cc.name(method, status)
	c := cc.set.GetOrCreateCounter(name)
	nl := make([]codeCounter, len(l), len(l)+1)
	copy(nl, l)
	nl = append(nl, codeCounter{key: key, c: c, name: name})
	cc.list.Store(&nl)
	c.Inc()
}

func (cc *codeCounters) name(method uint16, status int) string {
	b := []byte(cc.prefix)
	b = appendCode(b, status)
	b = append(b, '"')
	if cc.method {
		b = append(b, `,method="`...)
		b = append(b, methodLabel(method)...)
		b = append(b, '"')
	}
	return string(append(b, '}'))
}

func appendCode(b []byte, status int) []byte {
	if status == 0 {
		return append(b, "error"...)
	}
	return strconv.AppendInt(b, int64(status), 10)
}

func (cc *codeCounters) unregister() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if p := cc.list.Load(); p != nil {
		for _, e := range *p {
			cc.set.UnregisterMetric(e.name)
		}
	}
	cc.list.Store(nil)
}

// methodIndex is 1 + the index of the method bit, or 0 for other methods.
func methodIndex(bit uint16) int {
	if bit == 0 {
		return 0
	}
	return bits.TrailingZeros16(bit) + 1
}

// methodLabel is the method's name, or "OTHER" for a method outside the
// standard ones, so clients cannot create series at will.
func methodLabel(bit uint16) string {
	if bit == 0 {
		return "OTHER"
	}
	return methodNames[bits.TrailingZeros16(bit)]
}
