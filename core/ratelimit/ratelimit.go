// Package ratelimit is the gateway's rate limiting and throttling filter:
// the adapter between core's filter chain and the limiter packages. A
// Builder makes one Filter per route from the route's rate_limit (or the
// top-level default) and concurrency; the Filter checks every limit of the
// route per request, answers 429 (or the concurrency status) itself, and
// sets the RateLimit headers of draft-ietf-httpapi-ratelimit-headers.
//
// Local limits are limiter.Keyed (or one limiter.Limiter for key: route);
// global limits are limiter/redis Hybrid (default) or Exact over one
// shared rueidis client. Limiter state survives reloads: the Builder hands
// a route the same Filter while the route's limits are unchanged.
package ratelimit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/limiter"
	rlredis "fastgate/limiter/redis"
)

// Metric names (README "Metrics").
const (
	metricRejected          = "fastgate_ratelimit_rejected_total"
	metricThrottled         = "fastgate_concurrency_rejected_total"
	metricRedisChecks       = "fastgate_ratelimit_redis_checks_total"
	metricRedisRoundTrips   = "fastgate_ratelimit_redis_roundtrips_total"
	metricRedisErrors       = "fastgate_ratelimit_redis_errors_total"
	metricRedisFailOpen     = "fastgate_ratelimit_redis_fail_open_total"
	metricRedisFailClosed   = "fastgate_ratelimit_redis_fail_closed_total"
	keyScratchSize          = 256
	concurrencyRetryAfter   = "1"
	errRateLimited          = "rate limit exceeded"
	errConcurrencyExhausted = "too many requests in flight on this route"
)

// Options configure a Builder.
type Options struct {
	// Logger receives Redis failures (at most one per second per limit)
	// and recoveries. Default slog.Default().
	Logger *slog.Logger
	// Check makes Build validate only: it compiles every limit and key but
	// creates no limiter, connects to nothing and returns no Filter (for
	// `fastgate -check` and the compile that validates a reload).
	Check bool
	// Client, when set, is the Redis client of global limits, owned by the
	// caller. Otherwise the Builder creates one from the config's redis
	// section on first use and closes it in Close.
	Client rueidis.Client
}

// Builder is a core.FilterBuilder for rate_limit and concurrency. It is
// safe for concurrent use. Close it after the gateway has shut down.
type Builder struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	cache   map[cacheKey]*Filter
	clients map[config.Redis]rueidis.Client
	series  map[seriesKey]*series
	gauges  map[*metrics.Set]bool
	globals map[globalLimiter]struct{}
	retired rlredis.Stats // of closed global limiters, so the totals stay monotonic
}

var _ core.FilterBuilder = (*Builder)(nil)

type cacheKey struct {
	set   *metrics.Set
	route string
	spec  string
}

type seriesKey struct {
	set   *metrics.Set
	route string
}

// series are a route's counters, shared by the Filters of that route
// (an old one draining while a new one serves) and unregistered with the last.
type series struct {
	refs                int
	rejected, throttled *metrics.Counter
	names               [2]string
}

// globalLimiter is what the Builder needs of redis.Hybrid and redis.Exact.
type globalLimiter interface {
	Stats() rlredis.Stats
	Close()
}

// NewBuilder returns a Builder.
func NewBuilder(o Options) *Builder {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Builder{
		opts:    o,
		log:     log,
		cache:   make(map[cacheKey]*Filter),
		clients: make(map[config.Redis]rueidis.Client),
		series:  make(map[seriesKey]*series),
		gauges:  make(map[*metrics.Set]bool),
		globals: make(map[globalLimiter]struct{}),
	}
}

// Build returns the Filter of route rc, nil when it has neither a rate
// limit nor a concurrency cap (or in check mode). A route whose limits,
// concurrency and redis settings are unchanged since the last Build gets
// the same Filter, with its buckets.
func (b *Builder) Build(cfg *config.Config, rc *config.Route, set *metrics.Set) (core.Filter, error) {
	limits := cfg.RouteRateLimits(rc)
	if len(limits) == 0 && rc.Concurrency == nil {
		return nil, nil
	}
	if b.opts.Check {
		return nil, checkSpec(limits, rc.Concurrency)
	}
	spec := fmt.Sprintf("%+v|%+v", limits, rc.Concurrency)
	if hasGlobal(limits) {
		spec += fmt.Sprintf("|%+v", cfg.Redis)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	k := cacheKey{set: set, route: rc.Name, spec: spec}
	if f := b.cache[k]; f != nil {
		return f, nil
	}
	f, err := b.newFilter(cfg, rc, limits, set)
	if err != nil {
		return nil, err
	}
	f.key = k
	b.cache[k] = f
	return f, nil
}

// Close closes every Filter still held and the Redis clients the Builder
// created. Call it once the gateway is shut down.
func (b *Builder) Close() {
	b.mu.Lock()
	fs := make([]*Filter, 0, len(b.cache))
	for _, f := range b.cache {
		fs = append(fs, f)
	}
	b.mu.Unlock()
	for _, f := range fs {
		f.Close()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, c := range b.clients {
		c.Close()
		delete(b.clients, k)
	}
}

// RedisStats returns the summed counters of every global limiter the
// Builder has made, live or closed.
func (b *Builder) RedisStats() rlredis.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.retired
	for g := range b.globals {
		addStats(&st, g.Stats())
	}
	return st
}

func addStats(dst *rlredis.Stats, s rlredis.Stats) {
	dst.Checks += s.Checks
	dst.RoundTrips += s.RoundTrips
	dst.Errors += s.Errors
	dst.FailOpen += s.FailOpen
	dst.FailClosed += s.FailClosed
}

func hasGlobal(ls config.RateLimits) bool {
	for i := range ls {
		if ls[i].Scope == config.ScopeGlobal {
			return true
		}
	}
	return false
}

// checkSpec validates what Build would compile, without side effects.
func checkSpec(limits config.RateLimits, c *config.Concurrency) error {
	for i := range limits {
		l := &limits[i]
		p := limitPath(i, len(limits))
		if _, err := compileKey(l.Key); err != nil {
			return fmt.Errorf("%s.key: %w", p, err)
		}
		if _, err := limiter.NewGCRA(limitOf(l)); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if c != nil {
		if _, err := compileKey(orRoute(c.Key)); err != nil {
			return fmt.Errorf("concurrency.key: %w", err)
		}
		if _, err := limiter.NewConcurrency(c.Max, c.Queue, c.Wait.D()); err != nil {
			return fmt.Errorf("concurrency: %w", err)
		}
	}
	return nil
}

func limitPath(i, n int) string {
	if n == 1 {
		return "rate_limit"
	}
	return "rate_limit[" + strconv.Itoa(i) + "]"
}

func limitOf(l *config.RateLimit) limiter.Limit {
	return limiter.Limit{Rate: l.Rate, Per: l.Per.D(), Burst: l.Burst}
}

func orRoute(key string) string {
	if key == "" {
		return config.KeyRoute
	}
	return key
}

// newFilter compiles a route's Filter. Called with b.mu held.
func (b *Builder) newFilter(cfg *config.Config, rc *config.Route, limits config.RateLimits, set *metrics.Set) (f *Filter, err error) {
	f = &Filter{b: b, route: rc.Name}
	defer func() {
		if err != nil {
			f.closeLimiters()
			f.retireLocked()
		}
	}()
	for i := range limits {
		l, err := b.newLimit(cfg, rc.Name, &limits[i])
		if err != nil {
			return nil, fmt.Errorf("%s%w", limitPath(i, len(limits)), err)
		}
		f.limits = append(f.limits, l)
	}
	f.policy = appendPolicy(nil, f.limits)
	for i := range f.limits {
		f.hasHeaders = f.hasHeaders || f.limits[i].ietf || f.limits[i].legacy
	}
	if c := rc.Concurrency; c != nil {
		if f.conc, err = newConcurrency(c); err != nil {
			return nil, fmt.Errorf("concurrency%w", err)
		}
	}
	f.needState = f.hasHeaders || (f.conc != nil && f.conc.keyed != nil)
	f.series = b.acquireSeries(set, rc.Name)
	b.registerGauges(set)
	return f, nil
}

func (b *Builder) newLimit(cfg *config.Config, route string, c *config.RateLimit) (limit, error) {
	l := limit{name: c.Name, ietf: c.Headers == config.HeadersIETF || c.Headers == config.HeadersBoth,
		legacy: c.Headers == config.HeadersLegacy || c.Headers == config.HeadersBoth}
	var err error
	if l.key, err = compileKey(c.Key); err != nil {
		return l, fmt.Errorf(".key: %w", err)
	}
	lim := limitOf(c)
	g, err := limiter.NewGCRA(lim)
	if err != nil {
		return l, fmt.Errorf(": %w", err)
	}
	l.window = int64(ceilSeconds(lim.Window().Nanoseconds()))
	l.quota = g.Burst()
	if c.Scope == config.ScopeGlobal {
		return l, b.newGlobal(&l, cfg, route, c, lim)
	}
	if l.key.route {
		l.single, err = limiter.New(lim)
	} else {
		l.keyed, err = limiter.NewKeyed(lim, limiter.KeyedOptions{MaxKeys: c.MaxKeys})
	}
	if err != nil {
		return l, fmt.Errorf(": %w", err)
	}
	return l, nil
}

func (b *Builder) newGlobal(l *limit, cfg *config.Config, route string, c *config.RateLimit, lim limiter.Limit) error {
	client, err := b.client(&cfg.Redis)
	if err != nil {
		return fmt.Errorf(".scope: %w", err)
	}
	name := route + ":" + c.Name
	log := b.log.With("route", route, "limit", c.Name, "mode", c.Mode, "on_redis_error", c.OnRedisError)
	o := rlredis.Options{
		Timeout:    cfg.Redis.Timeout.D(),
		SyncPeriod: cfg.Redis.SyncPeriod.D(),
		FailClosed: c.OnRedisError == config.RedisErrClosed,
		MaxKeys:    c.MaxKeys,
		OnError: func(err error) {
			if errors.Is(err, rlredis.ErrRecovered) {
				log.Info("rate limit: redis is back")
				return
			}
			log.Warn("rate limit: redis failed; requests are admitted (on_redis_error: open) or denied (closed) until it is back", "error", err)
		},
	}
	var g globalLimiter
	if c.Mode == config.ModeExact {
		l.exact, err = rlredis.NewExact(client, name, lim, o)
		g = l.exact
	} else {
		l.hybrid, err = rlredis.NewHybrid(client, name, lim, o)
		g = l.hybrid
	}
	if err != nil {
		return fmt.Errorf(": %w", err)
	}
	l.global = g
	b.globals[g] = struct{}{}
	return nil
}

// client returns the shared Redis client for r, creating it on first use.
// A Redis that is down at start is not an error: rueidis reconnects, and
// until then global limits act by on_redis_error. Called with b.mu held.
func (b *Builder) client(r *config.Redis) (rueidis.Client, error) {
	if b.opts.Client != nil {
		return b.opts.Client, nil
	}
	if c := b.clients[*r]; c != nil {
		return c, nil
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{r.Address},
		Username:          r.Username,
		Password:          r.Password,
		SelectDB:          r.DB,
		DisableCache:      true,
		ForceSingleClient: true,
	})
	if c == nil {
		return nil, fmt.Errorf("redis %s: %w; check redis.address", r.Address, err)
	}
	if err != nil {
		b.log.Warn("redis unreachable; global rate limits act by on_redis_error until it is", "address", r.Address, "error", err)
	}
	b.clients[*r] = c
	return c, nil
}

// acquireSeries returns the route's counters, creating them once per set.
// Called with b.mu held.
func (b *Builder) acquireSeries(set *metrics.Set, route string) *series {
	k := seriesKey{set, route}
	s := b.series[k]
	if s == nil {
		label := `{route=` + strconv.Quote(route) + `}`
		s = &series{names: [2]string{metricRejected + label, metricThrottled + label}}
		s.rejected = set.GetOrCreateCounter(s.names[0])
		s.throttled = set.GetOrCreateCounter(s.names[1])
		b.series[k] = s
	}
	s.refs++
	return s
}

func (b *Builder) releaseSeries(set *metrics.Set, route string) {
	k := seriesKey{set, route}
	s := b.series[k]
	if s == nil {
		return
	}
	if s.refs--; s.refs == 0 {
		delete(b.series, k)
		set.UnregisterMetric(s.names[0])
		set.UnregisterMetric(s.names[1])
	}
}

// registerGauges exposes the Redis counters on set, once. Called with
// b.mu held.
func (b *Builder) registerGauges(set *metrics.Set) {
	if b.gauges[set] {
		return
	}
	b.gauges[set] = true
	stat := func(pick func(rlredis.Stats) uint64) func() float64 {
		return func() float64 { return float64(pick(b.RedisStats())) }
	}
	set.GetOrCreateGauge(metricRedisChecks, stat(func(s rlredis.Stats) uint64 { return s.Checks }))
	set.GetOrCreateGauge(metricRedisRoundTrips, stat(func(s rlredis.Stats) uint64 { return s.RoundTrips }))
	set.GetOrCreateGauge(metricRedisErrors, stat(func(s rlredis.Stats) uint64 { return s.Errors }))
	set.GetOrCreateGauge(metricRedisFailOpen, stat(func(s rlredis.Stats) uint64 { return s.FailOpen }))
	set.GetOrCreateGauge(metricRedisFailClosed, stat(func(s rlredis.Stats) uint64 { return s.FailClosed }))
}

// Filter enforces a route's rate limits and concurrency cap. It is safe
// for concurrent use and allocates nothing per request for local limits
// and for global hybrid limits on a key seen before.
type Filter struct {
	b      *Builder
	key    cacheKey
	route  string
	limits []limit
	// policy is the RateLimit-Policy value of the limits with IETF headers.
	policy     []byte
	hasHeaders bool
	conc       *concurrency
	needState  bool
	series     *series
	closeOnce  sync.Once
	closed     atomic.Bool
}

var (
	_ core.AfterFilter = (*Filter)(nil)
	_ io.Closer        = (*Filter)(nil)
)

// Filter checks the limits in order; the first that denies answers 429
// (later limits are not charged). Then it takes a concurrency slot.
func (f *Filter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	now := ctx.Time().UnixNano()
	var scratch [keyScratchSize]byte
	best := -1
	var bestD limiter.Decision
	for i := range f.limits {
		l := &f.limits[i]
		key := l.key.append(scratch[:0], ctx, r)
		d := l.allow(now, key)
		if !d.Allowed {
			f.deny(ctx, r, l, d)
			return false
		}
		if (l.ietf || l.legacy) && (best < 0 || d.Remaining < bestD.Remaining) {
			best, bestD = i, d
		}
	}
	var hash uint64
	if c := f.conc; c != nil {
		var ok bool
		if hash, ok = c.acquire(ctx, r, scratch[:0]); !ok {
			f.throttle(ctx, r)
			return false
		}
	}
	if f.needState {
		st := acquireState()
		st.limit, st.d, st.hash = best, bestD, hash
		ctx.SetUserValue(stateKey{}, st)
	}
	return true
}

// After releases the concurrency slot and sets the RateLimit headers of
// the most restrictive limit on the response.
func (f *Filter) After(ctx *fasthttp.RequestCtx, r *core.Request) {
	var st *state
	if f.needState {
		st, _ = ctx.UserValue(stateKey{}).(*state)
		if st == nil {
			return // the request never got past Filter (cannot happen)
		}
		ctx.RemoveUserValue(stateKey{})
		defer releaseState(st)
	}
	if f.conc != nil {
		f.conc.release(st)
	}
	if st != nil && st.limit >= 0 {
		f.writeHeaders(&ctx.Response.Header, &f.limits[st.limit], st.d, false)
	}
}

// Close stops the route's global limiters and drops the Filter from the
// Builder. It is idempotent.
func (f *Filter) Close() error {
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		f.closeLimiters()
		b := f.b
		b.mu.Lock()
		defer b.mu.Unlock()
		f.retireLocked()
		if b.cache[f.key] == f {
			delete(b.cache, f.key)
		}
		if f.series != nil {
			b.releaseSeries(f.key.set, f.route)
		}
	})
	return nil
}

// closeLimiters stops the global limiters' sync goroutines.
func (f *Filter) closeLimiters() {
	for i := range f.limits {
		if g := f.limits[i].global; g != nil {
			g.Close()
		}
	}
}

// retireLocked moves the global limiters' counts into the Builder's
// retired totals. Called with b.mu held, after closeLimiters.
func (f *Filter) retireLocked() {
	for i := range f.limits {
		if g := f.limits[i].global; g != nil {
			addStats(&f.b.retired, g.Stats())
			delete(f.b.globals, g)
		}
	}
}

// limit is one compiled rate limit.
type limit struct {
	name   string
	key    key
	quota  int
	window int64 // seconds: w of RateLimit-Policy
	ietf   bool
	legacy bool

	// exactly one of these
	single *limiter.Limiter
	keyed  *limiter.Keyed
	hybrid *rlredis.Hybrid
	exact  *rlredis.Exact
	global globalLimiter // hybrid or exact, for Stats and Close
}

// allow checks one request. Concrete calls, no interface: key stays on the
// caller's stack.
func (l *limit) allow(now int64, key []byte) limiter.Decision {
	switch {
	case l.keyed != nil:
		return l.keyed.AllowHash(now, xxhash.Sum64(key))
	case l.single != nil:
		return l.single.Allow(now)
	case l.hybrid != nil:
		return l.hybrid.Allow(now, key)
	default:
		return l.exact.Allow(now, key)
	}
}

func ceilSeconds(ns int64) int64 {
	const s = int64(1e9)
	return max(1, (ns+s-1)/s)
}
