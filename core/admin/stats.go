package admin

// The numbers behind the dashboard (GET /stats). A sampler snapshots the
// gateway's cumulative counters once a second into a ring of a minute;
// rates, error shares and latency quantiles are differences between two
// samples, computed here so the page only draws.
//
// Where the counters come from: the metric set's Prometheus text
// (Metrics().Set().WritePrometheus), parsed once a second. It is the one
// place that holds every series at one instant — the route histograms'
// buckets, which PrometheusHistogram does not expose, and the features'
// series (rate limit, cache), which core does not know — and it is off
// the request path. Upstream state (health, ejection, in-flight) is read
// typed from Gateway.Upstreams, and the routes' in-flight requests from
// Gateway.RouteInFlight, at the time of the /stats request.

import (
	"bytes"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	"fastgate/core"
)

// Sampling parameters.
const (
	// sampleEvery is the sampling period.
	sampleEvery = time.Second
	// sampleKeep is the ring's size: a minute of history for the
	// sparklines.
	sampleKeep = 60
	// statsWindow is the span of the rates and quantiles: long enough to
	// smooth a second's noise, short enough to follow a change.
	statsWindow = 10 * time.Second
	// samplerIdle stops the sampler when no /stats request came for that
	// long, so a gateway nobody watches pays nothing.
	samplerIdle = time.Minute
)

// Series the sampler reads (README "Metrics").
const (
	seriesRequests  = "fastgate_requests_total"
	seriesBucket    = "fastgate_request_duration_seconds_bucket"
	seriesSum       = "fastgate_request_duration_seconds_sum"
	seriesRejected  = "fastgate_ratelimit_rejected_total"
	seriesCache     = "fastgate_cache_requests_total"
	seriesUpstream  = "fastgate_upstream_requests_total"
	seriesInflight  = "fastgate_inflight_requests"
	seriesReloads   = "fastgate_config_reloads_total"
	unmatchedRoute  = "_unmatched"
	maxStatusClass  = 5
	cacheResultsLen = 5
)

// cacheResults are the result label values of fastgate_cache_requests_total,
// indexed as in routeSample.cache.
var cacheResults = [cacheResultsLen]string{"hit", "stale", "not_modified", "miss", "bypass"}

// cacheHits is how many leading cacheResults are answers from the cache.
const cacheHits = 3

// sample is the gateway's cumulative counters at one instant.
type sample struct {
	at       time.Time
	inflight float64
	reloadOK float64
	reloadKO float64
	routes   map[string]*routeSample
	targets  map[targetKey]float64 // upstream requests by target
}

type targetKey struct{ upstream, target string }

// routeSample is one route's cumulative counters.
type routeSample struct {
	// byClass counts requests by status class: index 1..5 for 1xx..5xx,
	// 0 for requests that got no status.
	byClass [maxStatusClass + 1]float64
	// buckets is the duration histogram, cumulative, by ascending le,
	// +Inf last.
	buckets []bucket
	sum     float64

	rejected     float64
	hasRateLimit bool
	cache        [cacheResultsLen]float64
	hasCache     bool
}

// bucket is one cumulative histogram bucket: count observations <= le
// seconds.
type bucket struct{ le, count float64 }

func (rs *routeSample) requests() float64 {
	var n float64
	for _, c := range rs.byClass {
		n += c
	}
	return n
}

func newSample(at time.Time) *sample {
	return &sample{at: at, routes: make(map[string]*routeSample), targets: make(map[targetKey]float64)}
}

func (s *sample) route(name string) *routeSample {
	rs := s.routes[name]
	if rs == nil {
		rs = &routeSample{}
		s.routes[name] = rs
	}
	return rs
}

// parseSample reads the series the dashboard needs from Prometheus text
// exposition; lines it does not know, comments and malformed lines are
// skipped.
func parseSample(text []byte, at time.Time) *sample {
	s := newSample(at)
	for len(text) > 0 {
		var line []byte
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			line, text = text, nil
		}
		if len(line) == 0 || line[0] != 'f' { // comments, other families
			continue
		}
		name, labels, value, ok := splitLine(line)
		if ok {
			s.add(name, labels, value)
		}
	}
	for _, rs := range s.routes {
		sort.Slice(rs.buckets, func(i, j int) bool { return rs.buckets[i].le < rs.buckets[j].le })
	}
	return s
}

// add records one series' value.
func (s *sample) add(name, labels []byte, v float64) {
	switch string(name) { // no allocation: the compiler compares in place
	case seriesRequests:
		rs := s.route(label(labels, "route"))
		rs.byClass[statusClass(label(labels, "code"))] += v
	case seriesBucket:
		le, err := strconv.ParseFloat(label(labels, "le"), 64)
		if err != nil {
			return
		}
		rs := s.route(label(labels, "route"))
		rs.buckets = append(rs.buckets, bucket{le: le, count: v})
	case seriesSum:
		s.route(label(labels, "route")).sum = v
	case seriesRejected:
		rs := s.route(label(labels, "route"))
		rs.rejected += v
		rs.hasRateLimit = true
	case seriesCache:
		rs := s.route(label(labels, "route"))
		result := label(labels, "result")
		for i, r := range cacheResults {
			if r == result {
				rs.cache[i] += v
				rs.hasCache = true
			}
		}
	case seriesUpstream:
		s.targets[targetKey{label(labels, "upstream"), label(labels, "target")}] += v
	case seriesInflight:
		s.inflight = v
	case seriesReloads:
		switch label(labels, "result") {
		case "ok":
			s.reloadOK = v
		case "error":
			s.reloadKO = v
		}
	}
}

// statusClass maps a code label ("200", "error") to its byClass index.
func statusClass(code string) int {
	if len(code) == 3 && code[0] >= '1' && code[0] <= '5' {
		return int(code[0] - '0')
	}
	return 0
}

// splitLine splits `name{labels} value` (labels optional, a timestamp
// ignored).
func splitLine(line []byte) (name, labels []byte, v float64, ok bool) {
	var rest []byte
	if i := bytes.IndexByte(line, '{'); i >= 0 {
		j := bytes.LastIndexByte(line, '}')
		if j < i {
			return nil, nil, 0, false
		}
		name, labels, rest = line[:i], line[i+1:j], line[j+1:]
	} else {
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			return nil, nil, 0, false
		}
		name, rest = line[:i], line[i:]
	}
	f := bytes.Fields(rest)
	if len(f) == 0 {
		return nil, nil, 0, false
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	return name, labels, v, err == nil
}

// label returns the unescaped value of the label key in labels
// (`a="x",b="y"`), or "".
func label(labels []byte, key string) string {
	for len(labels) > 0 {
		eq := bytes.IndexByte(labels, '=')
		if eq < 0 || eq+1 >= len(labels) || labels[eq+1] != '"' {
			return ""
		}
		k := string(bytes.TrimSpace(labels[:eq]))
		val, n := unquote(labels[eq+2:])
		if k == key {
			return val
		}
		labels = labels[eq+2+n:]
		if len(labels) > 0 && labels[0] == ',' {
			labels = labels[1:]
		}
	}
	return ""
}

// unquote reads a label value up to its closing quote, undoing the
// exposition format's escapes (\\, \", \n), and returns it with the bytes
// consumed, the quote included.
func unquote(b []byte) (string, int) {
	var out []byte
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			return string(out), i + 1
		case '\\':
			if i+1 < len(b) {
				i++
				if b[i] == 'n' {
					out = append(out, '\n')
				} else {
					out = append(out, b[i])
				}
			}
		default:
			out = append(out, c)
		}
	}
	return string(out), len(b)
}

// delta is cur - prev for a counter, or cur when the counter restarted
// (its series was removed by a reload and created again), as Prometheus's
// rate() treats a reset.
func delta(cur, prev float64) float64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// bucketDelta returns the histogram of the observations between prev and
// cur (prev may be nil: none before). A histogram whose bounds changed or
// whose count went down restarted: cur is all of it.
func bucketDelta(cur, prev []bucket) []bucket {
	out := make([]bucket, len(cur))
	copy(out, cur)
	if len(prev) != len(cur) || len(cur) == 0 || cur[len(cur)-1].count < prev[len(prev)-1].count {
		return out
	}
	for i := range out {
		if prev[i].le != cur[i].le {
			copy(out, cur)
			return out
		}
		out[i].count -= prev[i].count
	}
	return out
}

// quantile returns the q-quantile (0 < q < 1) of the cumulative buckets b
// (ascending le, +Inf last), interpolating linearly within the bucket that
// holds the rank, as Prometheus's histogram_quantile does: the first
// bucket's lower bound is 0, and a rank in the +Inf bucket answers the
// highest finite bound. ok is false when b holds no observation.
func quantile(q float64, b []bucket) (v float64, ok bool) {
	if len(b) < 2 || !math.IsInf(b[len(b)-1].le, 1) {
		return 0, false
	}
	total := b[len(b)-1].count
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	i := sort.Search(len(b), func(i int) bool { return b[i].count >= rank })
	if i >= len(b)-1 {
		return b[len(b)-2].le, true
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = b[i-1].le, b[i-1].count
	}
	in := b[i].count - below
	if in <= 0 {
		return b[i].le, true
	}
	return lower + (b[i].le-lower)*(rank-below)/in, true
}

// sampler keeps the last sampleKeep samples. It runs only while someone
// reads it: the first use starts a goroutine sampling every tick, which
// stops itself after idle without a use. It is safe for concurrent use.
type sampler struct {
	collect func(now time.Time) *sample
	now     func() time.Time
	// ticker starts the sampling tick and returns its channel and its
	// stop; tests pass ticks by hand.
	ticker func() (<-chan time.Time, func())
	idle   time.Duration

	mu      sync.Mutex
	ring    [sampleKeep]*sample
	n, next int // samples held; the ring index written next
	lastUse time.Time
	running bool
	// done is closed when the current sampling goroutine exits.
	done chan struct{}
}

func newSampler(collect func(time.Time) *sample) *sampler {
	return &sampler{
		collect: collect,
		now:     time.Now,
		ticker: func() (<-chan time.Time, func()) {
			t := time.NewTicker(sampleEvery)
			return t.C, t.Stop
		},
		idle: samplerIdle,
	}
}

// use notes a reader, starts sampling when stopped (with a first sample
// at once), and returns the samples, oldest first.
func (s *sampler) use() []*sample {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUse = now
	if !s.running {
		s.running = true
		s.addLocked(s.collect(now))
		tick, stop := s.ticker()
		s.done = make(chan struct{})
		go s.run(tick, stop, s.done)
	}
	out := make([]*sample, 0, s.n)
	for i := s.n; i > 0; i-- {
		out = append(out, s.ring[(s.next-i+sampleKeep)%sampleKeep])
	}
	return out
}

func (s *sampler) run(tick <-chan time.Time, stop func(), done chan struct{}) {
	defer close(done)
	defer stop()
	for now := range tick {
		if !s.step(now) {
			return
		}
	}
}

// step takes the sample of now, or stops the sampler (dropping its
// samples) when nobody used it for idle; it reports whether to go on.
func (s *sampler) step(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.lastUse) > s.idle {
		s.running = false
		s.ring, s.n, s.next = [sampleKeep]*sample{}, 0, 0
		return false
	}
	s.addLocked(s.collect(now))
	return true
}

func (s *sampler) addLocked(x *sample) {
	s.ring[s.next] = x
	s.next = (s.next + 1) % sampleKeep
	if s.n < sampleKeep {
		s.n++
	}
}

// stats is the body of GET /stats. Rates are per second over the window;
// latencies are in milliseconds; ratios are 0..1. A null is a figure with
// nothing to compute it from (no request in the window, no cache).
type stats struct {
	Time    time.Time `json:"time"`
	Version string    `json:"version"`
	// UptimeSeconds counts from the admin server's start, which is the
	// gateway's.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// WindowSeconds is the span the rates and quantiles cover: up to 10,
	// 0 until the sampler has two samples (a second after the first
	// request).
	WindowSeconds float64         `json:"window_seconds"`
	Gateway       gatewayStats    `json:"gateway"`
	Routes        []routeStats    `json:"routes"`
	Upstreams     []upstreamStats `json:"upstreams"`
}

// gatewayStats are the totals over every route, unmatched requests
// included.
type gatewayStats struct {
	RequestsTotal float64   `json:"requests_total"`
	Rate          float64   `json:"requests_per_second"`
	Ratio4xx      *float64  `json:"ratio_4xx"`
	Ratio5xx      *float64  `json:"ratio_5xx"`
	InFlight      float64   `json:"in_flight"`
	ReloadsOK     float64   `json:"reloads_ok"`
	ReloadsError  float64   `json:"reloads_error"`
	RateHistory   []float64 `json:"rate_history"`
}

// routeStats are one route's figures. The routes are those of the serving
// config, in config order, then "_unmatched" (requests no route took:
// 404, 405, malformed) when it has any.
type routeStats struct {
	Name          string   `json:"name"`
	RequestsTotal float64  `json:"requests_total"`
	Rate          float64  `json:"requests_per_second"`
	P50Millis     *float64 `json:"p50_ms"`
	P99Millis     *float64 `json:"p99_ms"`
	Ratio4xx      *float64 `json:"ratio_4xx"`
	Ratio5xx      *float64 `json:"ratio_5xx"`
	// InFlight counts the route's requests in an upstream call now.
	InFlight int64 `json:"in_flight"`
	// RateLimited is the rate of 429s of the route's rate limit, null
	// when the route has none.
	RateLimited      *float64 `json:"rate_limited_per_second"`
	RateLimitedTotal *float64 `json:"rate_limited_total"`
	// CacheHitRatio is hit, stale and not_modified answers over those and
	// misses (bypasses are not lookups), null without a cache or lookups.
	CacheHitRatio *float64 `json:"cache_hit_ratio"`
	// RateHistory and P99History are per-second figures of the last
	// minute, oldest first.
	RateHistory []float64  `json:"rate_history"`
	P99History  []*float64 `json:"p99_ms_history"`
}

// upstreamStats is GET /upstreams' state of one upstream with its
// targets' request rates.
type upstreamStats struct {
	core.UpstreamStatus
	Targets []targetStats `json:"targets"`
}

type targetStats struct {
	core.TargetStatus
	Rate float64 `json:"requests_per_second"`
}

// live is what /stats reads at request time rather than from samples.
type live struct {
	now       time.Time
	uptime    time.Duration
	version   string
	routes    []string // the serving config's route names, in order
	inflight  map[string]int64
	upstreams []core.UpstreamStatus
}

// computeStats derives the figures from samples (oldest first) and the
// live state.
func computeStats(samples []*sample, l *live) *stats {
	st := &stats{Time: l.now, Version: l.version, UptimeSeconds: l.uptime.Seconds()}
	if len(samples) == 0 {
		samples = []*sample{newSample(l.now)}
	}
	cur := samples[len(samples)-1]
	base := cur
	for i := len(samples) - 2; i >= 0 && cur.at.Sub(samples[i].at) <= statsWindow; i-- {
		base = samples[i]
	}
	dt := cur.at.Sub(base.at).Seconds()
	st.WindowSeconds = dt

	names := l.routes
	if rs := cur.routes[unmatchedRoute]; rs != nil && rs.requests() > 0 {
		names = append(names[:len(names):len(names)], unmatchedRoute)
	}
	var all [maxStatusClass + 1]float64
	for _, name := range names {
		r := routeFigures(name, cur, base, dt, samples)
		r.InFlight = l.inflight[name]
		st.Routes = append(st.Routes, r)
		st.Gateway.RequestsTotal += r.RequestsTotal
		if rs := cur.routes[name]; rs != nil {
			d := classDelta(rs, base.routes[name])
			for i := range all {
				all[i] += d[i]
			}
		}
	}
	st.Gateway.Rate = rate(sum(all[:]), dt)
	st.Gateway.Ratio4xx, st.Gateway.Ratio5xx = ratios(all)
	st.Gateway.InFlight = cur.inflight
	st.Gateway.ReloadsOK, st.Gateway.ReloadsError = cur.reloadOK, cur.reloadKO
	st.Gateway.RateHistory = make([]float64, 0, len(samples))
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		var n float64
		for name, rs := range b.routes {
			d := classDelta(rs, a.routes[name])
			n += sum(d[:])
		}
		st.Gateway.RateHistory = append(st.Gateway.RateHistory, rate(n, b.at.Sub(a.at).Seconds()))
	}
	st.Upstreams = upstreamFigures(l.upstreams, cur, base, dt)
	return st
}

// routeFigures computes one route's figures between base and cur.
func routeFigures(name string, cur, base *sample, dt float64, samples []*sample) routeStats {
	r := routeStats{Name: name, RateHistory: []float64{}, P99History: []*float64{}}
	rs := cur.routes[name]
	if rs == nil {
		rs = &routeSample{}
	}
	prev := base.routes[name]
	d := classDelta(rs, prev)
	r.RequestsTotal = rs.requests()
	r.Rate = rate(sum(d[:]), dt)
	r.Ratio4xx, r.Ratio5xx = ratios(d)
	var prevBuckets []bucket
	if prev != nil {
		prevBuckets = prev.buckets
	}
	hist := bucketDelta(rs.buckets, prevBuckets)
	r.P50Millis = millis(quantile(0.5, hist))
	r.P99Millis = millis(quantile(0.99, hist))
	if rs.hasRateLimit {
		var p float64
		if prev != nil {
			p = prev.rejected
		}
		r.RateLimited = ptr(rate(delta(rs.rejected, p), dt))
		r.RateLimitedTotal = ptr(rs.rejected)
	}
	if rs.hasCache {
		var hits, lookups float64
		for i := range rs.cache {
			var p float64
			if prev != nil {
				p = prev.cache[i]
			}
			c := delta(rs.cache[i], p)
			if i < cacheHits {
				hits += c
			}
			if cacheResults[i] != "bypass" {
				lookups += c
			}
		}
		if lookups > 0 {
			r.CacheHitRatio = ptr(hits / lookups)
		}
	}
	for i := 1; i < len(samples); i++ {
		a, b := samples[i-1], samples[i]
		bs := b.routes[name]
		if bs == nil {
			r.RateHistory = append(r.RateHistory, 0)
			r.P99History = append(r.P99History, nil)
			continue
		}
		as := a.routes[name]
		var ab []bucket
		if as != nil {
			ab = as.buckets
		}
		dc := classDelta(bs, as)
		r.RateHistory = append(r.RateHistory, rate(sum(dc[:]), b.at.Sub(a.at).Seconds()))
		r.P99History = append(r.P99History, millis(quantile(0.99, bucketDelta(bs.buckets, ab))))
	}
	return r
}

// upstreamFigures adds the targets' request rates to the upstreams'
// state.
func upstreamFigures(ups []core.UpstreamStatus, cur, base *sample, dt float64) []upstreamStats {
	out := make([]upstreamStats, 0, len(ups))
	for _, u := range ups {
		us := upstreamStats{UpstreamStatus: u, Targets: make([]targetStats, 0, len(u.Targets))}
		for _, t := range u.Targets {
			k := targetKey{u.Name, t.Addr}
			us.Targets = append(us.Targets, targetStats{TargetStatus: t, Rate: rate(delta(cur.targets[k], base.targets[k]), dt)})
		}
		out = append(out, us)
	}
	return out
}

// classDelta is the requests by status class between prev (nil: none)
// and cur.
func classDelta(cur, prev *routeSample) [maxStatusClass + 1]float64 {
	d := cur.byClass
	if prev != nil {
		for i := range d {
			d[i] = delta(cur.byClass[i], prev.byClass[i])
		}
	}
	return d
}

// ratios are the 4xx and 5xx shares of the requests by class d, null
// without requests.
func ratios(d [maxStatusClass + 1]float64) (r4, r5 *float64) {
	n := sum(d[:])
	if n == 0 {
		return nil, nil
	}
	return ptr(d[4] / n), ptr(d[5] / n)
}

func rate(n, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return n / seconds
}

func sum(v []float64) float64 {
	var n float64
	for _, x := range v {
		n += x
	}
	return n
}

func millis(seconds float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	return ptr(seconds * 1000)
}

func ptr(v float64) *float64 { return &v }
