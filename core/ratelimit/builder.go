// Package ratelimit is the gateway's rate limiting and throttling filter:
// the adapter between core's filter chain and the limiter packages. A
// Builder makes one Filter per route from the route's rate_limit (or the
// top-level default) and concurrency; the Filter checks every limit of the
// route per request, answers 429 (or the concurrency status) itself, and
// sets the RateLimit headers of draft-ietf-httpapi-ratelimit-headers.
//
// Local limits are limiter.Keyed (or one limiter.Limiter for key: route);
// global limits are limiter/redis Hybrid (default) or Exact over one
// shared rueidis client. Limiter state survives reloads: core hands a
// route the same Filter while the route's limits are unchanged (the
// Builder's Key). builder.go builds; filter.go is the request path.
package ratelimit

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/limiter"
	rlredis "fastgate/limiter/redis"
)

// Metric names (README "Metrics").
const (
	metricRejected        = "fastgate_ratelimit_rejected_total"
	metricThrottled       = "fastgate_concurrency_rejected_total"
	metricRedisChecks     = "fastgate_ratelimit_redis_checks_total"
	metricRedisRoundTrips = "fastgate_ratelimit_redis_roundtrips_total"
	metricRedisErrors     = "fastgate_ratelimit_redis_errors_total"
	metricRedisFailOpen   = "fastgate_ratelimit_redis_fail_open_total"
	metricRedisFailClosed = "fastgate_ratelimit_redis_fail_closed_total"
	keyScratchSize        = 256
	concurrencyRetryAfter = "1"
)

// Errors the filter answers with; the concurrency cap's status is the
// route's (concurrency.status).
var (
	errRateLimited          = &core.Error{Status: fasthttp.StatusTooManyRequests, Err: errors.New("rate limit exceeded")}
	errConcurrencyExhausted = errors.New("too many requests in flight on this route")
)

// Options configure a Builder.
type Options struct {
	// Logger receives Redis failures (at most one per second per limit)
	// and recoveries. Default slog.Default().
	Logger *slog.Logger
	// Client, when set, is the Redis client of global limits, owned by the
	// caller. Otherwise the Builder creates one from the config's redis
	// section on first use and closes it in Close.
	Client rueidis.Client
}

// Builder is a core.FilterBuilder for rate_limit and concurrency. Core
// keeps a route's Filter, with its buckets, across reloads while the
// route's spec (limits, concurrency, and redis when a limit is global) is
// unchanged. It is safe for concurrent use. Close it after the gateway has
// shut down.
type Builder struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	clients map[config.Redis]rueidis.Client
	globals map[globalLimiter]struct{}
	retired rlredis.Stats // of closed global limiters, so the totals stay monotonic
}

var _ core.FilterBuilder = (*Builder)(nil)

// spec is what a route's Filter is built from: its Key.
type spec struct {
	Limits      config.RateLimits
	Concurrency *config.Concurrency
	Redis       *config.Redis // only when a limit is global
	// Overrides are the consumers' own rates, by consumer index, when a
	// limit is keyed by consumer alone and a consumer has one.
	Overrides []*config.ConsumerRateLimit
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
		clients: make(map[config.Redis]rueidis.Client),
		globals: make(map[globalLimiter]struct{}),
	}
}

// Key returns the route's spec, nil when it has neither a rate limit (its
// own or the top-level default) nor a concurrency cap.
func (b *Builder) Key(cfg *config.Config, rc *config.Route) any {
	limits := cfg.RouteRateLimits(rc)
	if len(limits) == 0 && rc.Concurrency == nil {
		return nil
	}
	s := &spec{Limits: limits, Concurrency: rc.Concurrency, Overrides: overridesOf(cfg, limits)}
	if hasGlobal(limits) {
		s.Redis = &cfg.Redis
	}
	return s
}

// overridesOf returns the consumers' rate_limit by consumer index when a
// limit of ls is keyed by consumer alone and some consumer has one; nil
// otherwise.
func overridesOf(cfg *config.Config, ls config.RateLimits) []*config.ConsumerRateLimit {
	byConsumer := false
	for i := range ls {
		byConsumer = byConsumer || ls[i].Key == config.KeyConsumer
	}
	if !byConsumer {
		return nil
	}
	var out []*config.ConsumerRateLimit
	for i, c := range cfg.Consumers {
		if c != nil && c.RateLimit != nil {
			if out == nil {
				out = make([]*config.ConsumerRateLimit, len(cfg.Consumers))
			}
			out[i] = c.RateLimit
		}
	}
	return out
}

// Validate compiles every limit and key of the route, without creating a
// limiter or connecting to Redis.
func (b *Builder) Validate(e *core.Env) error {
	limits := e.Config.RouteRateLimits(e.Route)
	if overridesOf(e.Config, limits) != nil {
		for i := range limits {
			if limits[i].Key == config.KeyConsumer && limits[i].Scope == config.ScopeGlobal {
				return fmt.Errorf("%s.scope: consumers' own rate_limit apply to local limits only; set scope: local or drop the consumers' rate_limit", limitPath(i, len(limits)))
			}
		}
	}
	return checkSpec(limits, e.Route.Concurrency)
}

// Build returns the route's Filter. A global limit makes the Builder's
// shared Redis client on first use.
func (b *Builder) Build(e *core.Env) (core.Filter, error) {
	return b.newFilter(e, e.Config.RouteRateLimits(e.Route))
}

// Close closes the Redis clients the Builder created. Call it once the
// gateway is shut down (its snapshots have closed their Filters).
func (b *Builder) Close() {
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

// newFilter compiles a route's Filter.
func (b *Builder) newFilter(e *core.Env, limits config.RateLimits) (f *Filter, err error) {
	rc := e.Route
	f = &Filter{b: b, route: rc.Name}
	b.mu.Lock()
	defer b.mu.Unlock()
	defer func() {
		if err != nil {
			f.closeLimiters()
			f.retireLocked()
		}
	}()
	overrides := overridesOf(e.Config, limits)
	for i := range limits {
		l, err := b.newLimit(e.Config, rc.Name, &limits[i])
		if err != nil {
			return nil, fmt.Errorf("%s%w", limitPath(i, len(limits)), err)
		}
		if limits[i].Key == config.KeyConsumer && overrides != nil {
			if l.overrides, err = newOverrides(&l, &limits[i], overrides); err != nil {
				return nil, fmt.Errorf("%s%w", limitPath(i, len(limits)), err)
			}
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
	label := `{route=` + strconv.Quote(rc.Name) + `}`
	f.rejected = e.Counter(metricRejected + label)
	f.throttled = e.Counter(metricThrottled + label)
	b.registerGauges(e)
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

// newOverrides builds the consumers' own limits replacing l for them:
// local single buckets (one consumer, one bucket), or for a global l
// global limits of their own. The name, headers and scope are l's.
func newOverrides(l *limit, c *config.RateLimit, rates []*config.ConsumerRateLimit) ([]*limit, error) {
	if c.Scope == config.ScopeGlobal {
		return nil, fmt.Errorf(".key: consumers' own rate_limit apply to local limits only; set scope: local or drop the consumers' rate_limit")
	}
	out := make([]*limit, len(rates))
	for i, r := range rates {
		if r == nil {
			continue
		}
		lim := limiter.Limit{Rate: r.Rate, Per: r.Per.D(), Burst: r.Burst}
		g, err := limiter.NewGCRA(lim)
		if err != nil {
			return nil, fmt.Errorf(": consumers[%d].rate_limit: %w", i, err)
		}
		o := &limit{name: l.name, key: l.key, ietf: l.ietf, legacy: l.legacy,
			quota: g.Burst(), window: int64(ceilSeconds(lim.Window().Nanoseconds()))}
		if o.single, err = limiter.New(lim); err != nil {
			return nil, fmt.Errorf(": consumers[%d].rate_limit: %w", i, err)
		}
		out[i] = o
	}
	return out, nil
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

// registerGauges exposes the Redis counters; core keeps them while a
// Filter of the Builder is registered.
func (b *Builder) registerGauges(e *core.Env) {
	stat := func(pick func(rlredis.Stats) uint64) func() float64 {
		return func() float64 { return float64(pick(b.RedisStats())) }
	}
	e.Gauge(metricRedisChecks, stat(func(s rlredis.Stats) uint64 { return s.Checks }))
	e.Gauge(metricRedisRoundTrips, stat(func(s rlredis.Stats) uint64 { return s.RoundTrips }))
	e.Gauge(metricRedisErrors, stat(func(s rlredis.Stats) uint64 { return s.Errors }))
	e.Gauge(metricRedisFailOpen, stat(func(s rlredis.Stats) uint64 { return s.FailOpen }))
	e.Gauge(metricRedisFailClosed, stat(func(s rlredis.Stats) uint64 { return s.FailClosed }))
}
