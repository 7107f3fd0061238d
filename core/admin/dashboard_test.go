package admin

import (
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
)

// inf is the +Inf bucket bound.
var inf = math.Inf(1)

func TestQuantile(t *testing.T) {
	f := func(q float64, b []bucket, want float64, wantOK bool) {
		t.Helper()
		got, ok := quantile(q, b)
		if ok != wantOK || math.Abs(got-want) > 1e-12 {
			t.Fatalf("quantile(%v, %v): got %v, %v; want %v, %v", q, b, got, ok, want, wantOK)
		}
	}
	b := []bucket{{0.001, 0}, {0.01, 50}, {0.1, 100}, {inf, 100}}
	// The median is the top of the bucket holding ranks 1..50.
	f(0.5, b, 0.01, true)
	// Linear within the bucket: rank 25 of 50 in (1ms, 10ms].
	f(0.25, b, 0.0055, true)
	// Rank 99: 49 of the 50 in (10ms, 100ms].
	f(0.99, b, 0.01+0.09*49.0/50, true)
	// The first bucket's lower bound is 0.
	f(0.5, []bucket{{0.001, 10}, {0.01, 10}, {inf, 10}}, 0.0005, true)
	// A rank in the +Inf bucket answers the highest finite bound.
	f(0.99, []bucket{{0.1, 90}, {inf, 100}}, 0.1, true)
	// Nothing observed, or no +Inf bucket: no answer.
	f(0.5, []bucket{{0.1, 0}, {inf, 0}}, 0, false)
	f(0.5, []bucket{{0.1, 3}, {1, 5}}, 0, false)
	f(0.5, nil, 0, false)
}

func TestBucketDelta(t *testing.T) {
	f := func(cur, prev, want []bucket) {
		t.Helper()
		got := bucketDelta(cur, prev)
		if len(got) != len(want) {
			t.Fatalf("bucketDelta(%v, %v): got %v; want %v", cur, prev, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("bucketDelta(%v, %v): got %v; want %v", cur, prev, got, want)
			}
		}
	}
	cur := []bucket{{0.1, 10}, {1, 30}, {inf, 40}}
	f(cur, []bucket{{0.1, 4}, {1, 10}, {inf, 12}}, []bucket{{0.1, 6}, {1, 20}, {inf, 28}})
	// No earlier histogram: all of it.
	f(cur, nil, cur)
	// The count went down: the series restarted (a reload removed and
	// re-created the route).
	f(cur, []bucket{{0.1, 50}, {1, 50}, {inf, 50}}, cur)
	// Other bounds: restarted too.
	f(cur, []bucket{{0.2, 1}, {1, 2}, {inf, 3}}, cur)
}

const exposition = `# HELP fastgate_requests_total
# TYPE fastgate_requests_total counter
fastgate_requests_total{route="users",code="200",method="GET"} 90
fastgate_requests_total{route="users",code="200",method="POST"} 5
fastgate_requests_total{route="users",code="404",method="GET"} 3
fastgate_requests_total{route="users",code="503",method="GET"} 2
fastgate_requests_total{route="users",code="error",method="GET"} 1
fastgate_requests_total{route="we\"ird\\name",code="200",method="GET"} 7
fastgate_request_duration_seconds_bucket{route="users",le="0.01"} 60
fastgate_request_duration_seconds_bucket{route="users",le="+Inf"} 101
fastgate_request_duration_seconds_bucket{route="users",le="0.1"} 100
fastgate_request_duration_seconds_sum{route="users"} 2.5
fastgate_request_duration_seconds_count{route="users"} 101
fastgate_ratelimit_rejected_total{route="users"} 4
fastgate_cache_requests_total{route="users",result="hit"} 30
fastgate_cache_requests_total{route="users",result="not_modified"} 2
fastgate_cache_requests_total{route="users",result="miss"} 8
fastgate_cache_requests_total{route="users",result="bypass"} 50
fastgate_upstream_requests_total{upstream="u",target="127.0.0.1:9001",code="200"} 40
fastgate_upstream_requests_total{upstream="u",target="127.0.0.1:9001",code="502"} 2
fastgate_inflight_requests 3
fastgate_config_reloads_total{result="ok"} 6
fastgate_config_reloads_total{result="error"} 1
fastgate_upstream_healthy{upstream="u",target="127.0.0.1:9001"} 1
not a line
fastgate_requests_total{route="broken" 1
`

func TestParseSample(t *testing.T) {
	at := time.Unix(1000, 0)
	s := parseSample([]byte(exposition), at)
	f := func(what string, got, want float64) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: got %v; want %v", what, got, want)
		}
	}
	if !s.at.Equal(at) {
		t.Fatalf("at: got %v; want %v", s.at, at)
	}
	u := s.routes["users"]
	if u == nil {
		t.Fatalf("routes: got %v; want users", s.routes)
	}
	f("users 2xx (GET and POST)", u.byClass[2], 95)
	f("users 4xx", u.byClass[4], 3)
	f("users 5xx", u.byClass[5], 2)
	f("users without status", u.byClass[0], 1)
	f("users requests", u.requests(), 101)
	f("users sum", u.sum, 2.5)
	f("users rejected", u.rejected, 4)
	f("users cache hit", u.cache[0], 30)
	f("users cache not_modified", u.cache[2], 2)
	f("users cache miss", u.cache[3], 8)
	f("users cache bypass", u.cache[4], 50)
	if !u.hasRateLimit || !u.hasCache {
		t.Fatalf("users hasRateLimit, hasCache: got %v, %v; want true, true", u.hasRateLimit, u.hasCache)
	}
	want := []bucket{{0.01, 60}, {0.1, 100}, {inf, 101}}
	if len(u.buckets) != len(want) {
		t.Fatalf("users buckets: got %v; want %v (sorted by le)", u.buckets, want)
	}
	for i := range want {
		if u.buckets[i] != want[i] {
			t.Fatalf("users buckets: got %v; want %v (sorted by le)", u.buckets, want)
		}
	}
	w := s.routes[`we"ird\name`]
	if w == nil || w.byClass[2] != 7 || w.hasCache || w.hasRateLimit {
		t.Fatalf("escaped route name: got %+v in %v; want 7 2xx, no cache, no rate limit", w, s.routes)
	}
	if s.routes["broken"] != nil {
		t.Fatalf("a malformed line was read: %+v", s.routes["broken"])
	}
	f("target requests", s.targets[targetKey{"u", "127.0.0.1:9001"}], 42)
	f("inflight", s.inflight, 3)
	f("reloads ok", s.reloadOK, 6)
	f("reloads error", s.reloadKO, 1)
}

// routeAt is a synthetic route sample: 2xx, 4xx, 5xx counts and the
// cumulative counts of the buckets 10ms, 100ms, +Inf.
func routeAt(ok, c4, c5 float64, b10, b100 float64) *routeSample {
	rs := &routeSample{}
	rs.byClass[2], rs.byClass[4], rs.byClass[5] = ok, c4, c5
	rs.buckets = []bucket{{0.01, b10}, {0.1, b100}, {inf, ok + c4 + c5}}
	return rs
}

func TestComputeStats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	old := newSample(t0)
	old.routes["users"] = routeAt(100, 0, 0, 100, 100)
	old.routes["users"].hasRateLimit, old.routes["users"].rejected = true, 5
	old.routes["users"].hasCache = true
	old.routes["orders"] = routeAt(500, 0, 0, 0, 500)
	old.targets[targetKey{"u", "a:1"}] = 10
	old.reloadOK = 1

	cur := newSample(t0.Add(10 * time.Second))
	// users: 500 more 2xx, 50 4xx, 50 5xx in 10s; of the 600, 300 under
	// 10ms, all under 100ms.
	cur.routes["users"] = routeAt(600, 50, 50, 400, 700)
	cur.routes["users"].hasRateLimit, cur.routes["users"].rejected = true, 25
	cur.routes["users"].hasCache = true
	cur.routes["users"].cache = [cacheResultsLen]float64{20, 5, 5, 10, 100} // hit, stale, not_modified, miss, bypass
	// orders restarted (removed and added back by reloads): 40 since.
	cur.routes["orders"] = routeAt(40, 0, 0, 0, 40)
	cur.routes[unmatchedRoute] = routeAt(0, 20, 0, 20, 20)
	cur.targets[targetKey{"u", "a:1"}] = 110
	cur.inflight = 7
	cur.reloadOK, cur.reloadKO = 2, 1

	st := computeStats([]*sample{old, cur}, &live{
		now:      cur.at,
		uptime:   90 * time.Second,
		version:  "v1.2.3",
		routes:   []string{"users", "orders", "gone"},
		inflight: map[string]int64{"users": 3},
		upstreams: []core.UpstreamStatus{{Name: "u", Source: "dns", Targets: []core.TargetStatus{
			{Addr: "a:1", Healthy: true, Available: true},
		}}},
	})
	f := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Fatalf("%s: got %v; want %v", what, got, want)
		}
	}
	fp := func(what string, got *float64, want float64) {
		t.Helper()
		if got == nil {
			t.Fatalf("%s: got null; want %v", what, want)
		}
		f(what, *got, want)
	}
	f("window", st.WindowSeconds, 10)
	f("uptime", st.UptimeSeconds, 90)
	if len(st.Routes) != 4 {
		t.Fatalf("routes: got %d; want users, orders, gone, _unmatched", len(st.Routes))
	}
	for i, name := range []string{"users", "orders", "gone", unmatchedRoute} {
		if st.Routes[i].Name != name {
			t.Fatalf("routes[%d]: got %q; want %q", i, st.Routes[i].Name, name)
		}
	}
	u := st.Routes[0]
	f("users rate", u.Rate, 60)
	fp("users 4xx", u.Ratio4xx, 50.0/600)
	fp("users 5xx", u.Ratio5xx, 50.0/600)
	// 300 of 600 under 10ms: the median is the 10ms bound.
	fp("users p50", u.P50Millis, 10)
	// rank 594 is the 294th of the 300 in (10ms, 100ms].
	fp("users p99", u.P99Millis, 10+90*294.0/300)
	f("users total", u.RequestsTotal, 700)
	if u.InFlight != 3 {
		t.Fatalf("users in flight: got %d; want 3", u.InFlight)
	}
	fp("users rate limited", u.RateLimited, 2)
	fp("users rate limited total", u.RateLimitedTotal, 25)
	// hit+stale+not_modified 30 of 40 lookups; bypasses are no lookups.
	fp("users cache hit ratio", u.CacheHitRatio, 0.75)

	o := st.Routes[1]
	f("orders rate after a restart", o.Rate, 4)
	if o.RateLimited != nil || o.CacheHitRatio != nil {
		t.Fatalf("orders: got rate limited %v, cache %v; want null, null (neither configured)", o.RateLimited, o.CacheHitRatio)
	}
	g := st.Routes[2]
	if g.Rate != 0 || g.P99Millis != nil || g.Ratio5xx != nil {
		t.Fatalf("route without samples: got %+v; want rate 0, null quantiles and ratios", g)
	}
	f("unmatched rate", st.Routes[3].Rate, 2)

	f("gateway rate", st.Gateway.Rate, 60+4+2)
	fp("gateway 5xx", st.Gateway.Ratio5xx, 50.0/660)
	fp("gateway 4xx", st.Gateway.Ratio4xx, 70.0/660)
	f("gateway in flight", st.Gateway.InFlight, 7)
	f("gateway total", st.Gateway.RequestsTotal, 700+40+20)
	f("reloads ok", st.Gateway.ReloadsOK, 2)
	f("reloads error", st.Gateway.ReloadsError, 1)
	if len(st.Gateway.RateHistory) != 1 || st.Gateway.RateHistory[0] != 66 {
		t.Fatalf("gateway rate history: got %v; want [66]", st.Gateway.RateHistory)
	}
	if len(u.RateHistory) != 1 || u.RateHistory[0] != 60 || len(u.P99History) != 1 || u.P99History[0] == nil {
		t.Fatalf("users history: got %v, %v; want one point each", u.RateHistory, u.P99History)
	}

	if len(st.Upstreams) != 1 || len(st.Upstreams[0].Targets) != 1 {
		t.Fatalf("upstreams: got %+v; want u with one target", st.Upstreams)
	}
	f("target rate", st.Upstreams[0].Targets[0].Rate, 10)
}

// TestComputeStatsWindow checks that the rates span the last 10 seconds of
// a minute of samples, and that a lone sample gives a zero window.
func TestComputeStatsWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var samples []*sample
	for i := range sampleKeep {
		s := newSample(t0.Add(time.Duration(i) * time.Second))
		// 10 requests a second, then 100 a second for the last 10.
		n := float64(10 * i)
		if i > sampleKeep-11 {
			n = float64(10*(sampleKeep-11)) + float64(100*(i-(sampleKeep-11)))
		}
		s.routes["r"] = routeAt(n, 0, 0, n, n)
		samples = append(samples, s)
	}
	l := &live{now: samples[len(samples)-1].at, routes: []string{"r"}}
	st := computeStats(samples, l)
	if st.WindowSeconds != 10 || st.Routes[0].Rate != 100 {
		t.Fatalf("window, rate: got %v, %v; want 10, 100", st.WindowSeconds, st.Routes[0].Rate)
	}
	if n := len(st.Routes[0].RateHistory); n != sampleKeep-1 {
		t.Fatalf("history length: got %d; want %d", n, sampleKeep-1)
	}
	if h := st.Routes[0].RateHistory; h[0] != 10 || h[len(h)-1] != 100 {
		t.Fatalf("history: got first %v, last %v; want 10, 100", h[0], h[len(h)-1])
	}

	st = computeStats(samples[:1], l)
	if st.WindowSeconds != 0 || st.Routes[0].Rate != 0 || st.Routes[0].P50Millis != nil {
		t.Fatalf("one sample: got window %v, rate %v, p50 %v; want 0, 0, null", st.WindowSeconds, st.Routes[0].Rate, st.Routes[0].P50Millis)
	}
	st = computeStats(nil, l)
	if len(st.Routes) != 1 || st.Routes[0].Rate != 0 {
		t.Fatalf("no sample: got %+v; want route r at rate 0", st.Routes)
	}
}

// fakeSampler is a sampler on a virtual clock whose ticks the test sends;
// collected receives the time of each sample taken.
type fakeSampler struct {
	*sampler
	clock     time.Time
	tick      chan time.Time
	collected chan time.Time
	starts    int
}

func newFakeSampler(t *testing.T, collect func(time.Time) *sample) *fakeSampler {
	fs := &fakeSampler{clock: time.Unix(1000, 0), collected: make(chan time.Time, sampleKeep+1)}
	fs.sampler = newSampler(func(now time.Time) *sample {
		fs.collected <- now
		return collect(now)
	})
	fs.now = func() time.Time { return fs.clock }
	fs.ticker = func() (<-chan time.Time, func()) {
		fs.starts++
		fs.tick = make(chan time.Time)
		return fs.tick, func() {}
	}
	t.Cleanup(func() {
		if fs.running {
			close(fs.tick)
			<-fs.done
		}
	})
	return fs
}

// step sends a tick at the clock advanced by d and waits for its sample.
func (fs *fakeSampler) step(t *testing.T, d time.Duration) {
	t.Helper()
	fs.clock = fs.clock.Add(d)
	fs.tick <- fs.clock
	select {
	case <-fs.collected:
	case <-time.After(10 * time.Second):
		t.Fatal("no sample after a tick")
	}
}

func TestSampler(t *testing.T) {
	fs := newFakeSampler(t, newSample)
	// Nothing runs until the first use, which samples at once.
	if fs.running || fs.starts != 0 {
		t.Fatalf("before use: got running %v, starts %d; want false, 0", fs.running, fs.starts)
	}
	got := fs.use()
	<-fs.collected
	if len(got) != 1 || !got[0].at.Equal(fs.clock) || fs.starts != 1 {
		t.Fatalf("first use: got %d samples, starts %d; want 1 sample at %v, 1 start", len(got), fs.starts, fs.clock)
	}
	// A tick a second: the ring holds the last minute, oldest first.
	for range sampleKeep + 4 {
		fs.step(t, time.Second)
		fs.use()
	}
	got = fs.use()
	if len(got) != sampleKeep {
		t.Fatalf("samples: got %d; want %d", len(got), sampleKeep)
	}
	for i := 1; i < len(got); i++ {
		if got[i].at.Sub(got[i-1].at) != time.Second {
			t.Fatalf("samples[%d..%d]: got %v, %v; want a second apart, oldest first", i-1, i, got[i-1].at, got[i].at)
		}
	}
	if !got[len(got)-1].at.Equal(fs.clock) {
		t.Fatalf("newest sample: got %v; want %v", got[len(got)-1].at, fs.clock)
	}
	if fs.starts != 1 {
		t.Fatalf("starts while used: got %d; want 1", fs.starts)
	}

	// Unused for the idle time: still sampling; a tick past it stops the
	// goroutine and drops the samples.
	fs.step(t, samplerIdle)
	fs.clock = fs.clock.Add(time.Second)
	fs.tick <- fs.clock
	select {
	case <-fs.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the sampler did not stop after idle")
	}
	if fs.running || fs.n != 0 {
		t.Fatalf("after idle: got running %v, %d samples; want false, 0", fs.running, fs.n)
	}
	// The next use starts again, from one fresh sample.
	fs.clock = fs.clock.Add(time.Hour)
	got = fs.use()
	<-fs.collected
	if len(got) != 1 || !got[0].at.Equal(fs.clock) || fs.starts != 2 {
		t.Fatalf("use after idle: got %d samples, starts %d; want 1 fresh sample, 2 starts", len(got), fs.starts)
	}
}

const dashConfig = `
admin: {token: s3cret}
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - name: users
    match: {path: "/users/{id}"}
    upstream: users
  - name: idle
    match: {path: "/idle"}
    upstream: users
`

func startDash(t *testing.T) *coretest.Gateway {
	return coretest.Start(t, dashConfig, core.Options{}, map[string]fasthttp.RequestHandler{
		"10.0.0.1:80": func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/users/0" {
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			}
			ctx.SetBodyString("ok")
		},
	})
}

// serve runs h on a GET of uri with "Name: value" headers.
func serve(h fasthttp.RequestHandler, uri string, headers ...string) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.SetRequestURI(uri)
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		ctx.Request.Header.Set(k, strings.TrimSpace(v))
	}
	h(ctx)
	return ctx
}

func TestDashboardPage(t *testing.T) {
	g := startDash(t)
	h := New(g.Gateway, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).Handler()
	f := func(uri, contentType, bodyHas string) {
		t.Helper()
		ctx := serve(h, uri)
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("GET %s without a token: status got %d; want 200 (the page is public)", uri, ctx.Response.StatusCode())
		}
		if ct := string(ctx.Response.Header.ContentType()); ct != contentType {
			t.Fatalf("GET %s: Content-Type got %q; want %q", uri, ct, contentType)
		}
		if cc := string(ctx.Response.Header.Peek("Cache-Control")); cc != "no-cache" {
			t.Fatalf("GET %s: Cache-Control got %q; want %q", uri, cc, "no-cache")
		}
		if csp := string(ctx.Response.Header.Peek("Content-Security-Policy")); !strings.Contains(csp, "default-src 'none'") {
			t.Fatalf("GET %s: Content-Security-Policy got %q; want default-src 'none'", uri, csp)
		}
		if nosniff := string(ctx.Response.Header.Peek("X-Content-Type-Options")); nosniff != "nosniff" {
			t.Fatalf("GET %s: X-Content-Type-Options got %q; want nosniff", uri, nosniff)
		}
		if !strings.Contains(string(ctx.Response.Body()), bodyHas) {
			t.Fatalf("GET %s: body has no %q", uri, bodyHas)
		}
	}
	f("/", "text/html; charset=utf-8", `<script src="/dashboard.js"`)
	f("/dashboard.js", "text/javascript; charset=utf-8", `fetch("/stats"`)
	f("/dashboard.css", "text/css; charset=utf-8", ".spark")

	// The page references no other origin.
	for _, asset := range [][]byte{dashboardHTML, dashboardJS, dashboardCSS} {
		if s := string(asset); strings.Contains(s, "https://") || strings.Contains(s, "//cdn") {
			t.Fatalf("an asset loads from elsewhere: %q", s[strings.Index(s, "//")-10:][:60])
		}
	}

	// The figures need the token.
	for _, auth := range []string{"", "Authorization: Bearer wrong"} {
		ctx := serve(h, "/stats", auth)
		if ctx.Response.StatusCode() != fasthttp.StatusUnauthorized {
			t.Fatalf("GET /stats with %q: status got %d; want 401", auth, ctx.Response.StatusCode())
		}
		if !strings.Contains(string(ctx.Response.Body()), "admin token") {
			t.Fatalf("GET /stats with %q: body %q does not say the token is missing", auth, ctx.Response.Body())
		}
	}
}

// TestDashboardStats drives requests through an in-memory gateway and
// reads GET /stats between two samples a second apart.
func TestDashboardStats(t *testing.T) {
	g := startDash(t)
	d := newDashboard(g.Gateway)
	fs := newFakeSampler(t, d.collect)
	d.sampler = fs.sampler

	ctx := serve(d.stats, "/stats")
	<-fs.collected
	var st stats
	if err := json.Unmarshal(ctx.Response.Body(), &st); err != nil {
		t.Fatalf("first /stats: %s: %s", err, ctx.Response.Body())
	}
	if st.WindowSeconds != 0 || len(st.Routes) != 2 || st.Routes[0].Name != "users" || st.Routes[1].Name != "idle" {
		t.Fatalf("first /stats: got window %v, routes %+v; want 0, users and idle", st.WindowSeconds, st.Routes)
	}

	for i := range 20 {
		resp := g.Do("GET", "http://gw/users/"+string(rune('0'+i%10)))
		fasthttp.ReleaseResponse(resp)
	}
	fs.step(t, time.Second)
	ctx = serve(d.stats, "/stats")
	if ct := string(ctx.Response.Header.ContentType()); ct != "application/json" {
		t.Fatalf("/stats Content-Type: got %q; want application/json", ct)
	}
	if cc := string(ctx.Response.Header.Peek("Cache-Control")); cc != "no-store" {
		t.Fatalf("/stats Cache-Control: got %q; want no-store", cc)
	}
	body := ctx.Response.Body()
	st = stats{}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/stats: %s: %s", err, body)
	}
	u := st.Routes[0]
	if st.WindowSeconds != 1 || u.RequestsTotal != 20 || u.Rate != 20 {
		t.Fatalf("users: got window %v, total %v, rate %v; want 1, 20, 20", st.WindowSeconds, u.RequestsTotal, u.Rate)
	}
	if u.Ratio5xx == nil || *u.Ratio5xx != 0.1 || u.P50Millis == nil || u.P99Millis == nil {
		t.Fatalf("users: got 5xx %v, p50 %v, p99 %v; want 0.1 (/users/0 answers 503), quantiles", u.Ratio5xx, u.P50Millis, u.P99Millis)
	}
	if st.Routes[1].RequestsTotal != 0 || st.Routes[1].P99Millis != nil {
		t.Fatalf("idle: got %+v; want no requests, null p99", st.Routes[1])
	}
	if st.Version == "" || st.UptimeSeconds <= 0 {
		t.Fatalf("version, uptime: got %q, %v; want set", st.Version, st.UptimeSeconds)
	}
	if len(st.Upstreams) != 1 || len(st.Upstreams[0].Targets) != 1 {
		t.Fatalf("upstreams: got %+v; want users with one target", st.Upstreams)
	}
	tg := st.Upstreams[0].Targets[0]
	if tg.Addr != "10.0.0.1:80" || !tg.Healthy || tg.Rate != 20 {
		t.Fatalf("target: got %+v; want 10.0.0.1:80, healthy, 20 req/s", tg)
	}
	// The upstream's and target's own fields are flattened, as in GET
	// /upstreams.
	for _, key := range []string{`"balancer":`, `"addr":"10.0.0.1:80"`, `"requests_per_second":20`, `"healthy":true`, `"source":`} {
		if !strings.Contains(string(body), key) {
			t.Fatalf("/stats body has no %s: %s", key, body)
		}
	}
}
