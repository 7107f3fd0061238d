package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// RateLimit is one rate limit: Rate requests per Per with bursts of Burst,
// counted per key (client IP, a header, the route...). A route's limits are
// a RateLimits list; README "Rate limiting" has the semantics.
type RateLimit struct {
	// Name identifies the limit in the RateLimit-Policy and RateLimit
	// response headers ("name";q=100;w=1) and in Redis keys (with the route
	// name, so nodes sharing a config share state). Letters, digits, '_',
	// '.' and '-'. Default "<rate>-per-<per>", such as "100-per-1s"; unique
	// within a route.
	Name string `json:"name" yaml:"name"`

	// Rate is the number of requests admitted per Per in the long run.
	// Required, > 0.
	Rate int `json:"rate" yaml:"rate"`

	// Per is the period Rate is counted over. Default 1s. At least Rate
	// nanoseconds (Rate microseconds with scope: global).
	Per Duration `json:"per" yaml:"per"`

	// Burst is the most requests admitted at once after an idle period: the
	// quota advertised as q in RateLimit-Policy. Default (and zero) Rate.
	Burst int `json:"burst" yaml:"burst"`

	// Key says what is counted separately: "ip" (the client IP the gateway
	// trusts, never the leftmost X-Forwarded-For), "header:NAME" (the
	// header's value; requests without the header share one bucket, keyed
	// by the empty value, so omitting it never bypasses the limit),
	// "route" (one bucket for the whole route), or several of ip and
	// header:NAME joined by '+', such as "ip+header:X-Tenant", or
	// "consumer": the consumer that the route's auth established (its
	// name; a consumer's own rate_limit replaces the limit for it when the
	// key is "consumer" alone). A route's own limit keyed by consumer needs
	// the route to have auth; with the top-level default, requests of
	// routes without auth share one bucket per route. Default "ip". Every
	// route has its own buckets, also when the limit comes from the
	// top-level default.
	Key string `json:"key" yaml:"key"`

	// Scope is "local" (each gateway process counts alone, so N processes
	// admit up to N times the rate) or "global" (the processes share the
	// limit through Redis; needs redis.address). Default "local".
	Scope string `json:"scope" yaml:"scope"`

	// Mode is how a global limit uses Redis: "hybrid" (admit from a local
	// share, reconcile with Redis in the background every
	// redis.sync_period; no request waits on Redis, bounded
	// over-admission) or "exact" (one Redis round trip per check). Only
	// with scope: global; default "hybrid".
	Mode string `json:"mode" yaml:"mode"`

	// OnRedisError is what a global limit does while Redis is down or slow:
	// "open" admits (hybrid keeps limiting from its local state), "closed"
	// denies with 429. Only with scope: global; default "open".
	OnRedisError string `json:"on_redis_error" yaml:"on_redis_error"`

	// Headers are the rate limit headers sent on every response of the
	// route: "ietf" (RateLimit-Policy and RateLimit, per
	// draft-ietf-httpapi-ratelimit-headers), "legacy" (X-RateLimit-Limit,
	// -Remaining, -Reset), "both" or "none". A 429 always has Retry-After.
	// Default "ietf".
	Headers string `json:"headers" yaml:"headers"`

	// MaxKeys caps the keys a local limit (or a global limit's local state)
	// holds; when full, the longest idle keys are evicted (an idle key at
	// full burst is forgotten without changing any decision). Default
	// (and zero) 1,000,000.
	MaxKeys int `json:"max_keys" yaml:"max_keys"`
}

// RateLimits are the limits of a route, all checked in order on every
// request; the first that denies answers 429, and the limits after it are
// not charged. In a config it is one limit as a mapping, several as a
// list, or "off" (also []) for none. A nil RateLimits (absent) means "the
// top-level default"; an empty, non-nil one means "no limit".
type RateLimits []RateLimit

// Concurrency caps the requests of a route in flight at once (throttling).
type Concurrency struct {
	// Max is the most requests of the route (or of one key, with Key) being
	// served at once. Required, > 0.
	Max int `json:"max" yaml:"max"`

	// Queue is how many more requests may wait for a slot, each at most
	// Wait. Default 0: no queue. Only without Key.
	Queue int `json:"queue" yaml:"queue"`

	// Wait is the longest a queued request waits for a slot before it is
	// rejected. Required > 0 with Queue; default 0.
	Wait Duration `json:"wait" yaml:"wait"`

	// Key, when set, caps each key separately (same syntax as
	// rate_limit.key, without "route"). Default "": the whole route.
	Key string `json:"key" yaml:"key"`

	// Status is the status of a rejected request: 503 (the default; the
	// route is saturated, as Envoy answers an overflow) or 429. It has
	// Retry-After: 1 and the gateway's JSON error body.
	Status int `json:"status" yaml:"status"`
}

// Redis is the server that global rate limits share. One client is shared
// by every limit; a single Redis (or a proxy in front of a cluster).
type Redis struct {
	// Address is "host:port". Required when a rate limit has scope: global.
	Address string `json:"address" yaml:"address"`

	// Username for Redis ACL auth (AUTH username password). Default "".
	Username string `json:"username" yaml:"username"`

	// Password for AUTH. Default "": none. Put it in the environment:
	// password: "${REDIS_PASSWORD}". It is redacted from GET /config.
	Password string `json:"password" yaml:"password"`

	// DB is the database number (SELECT). Default 0.
	DB int `json:"db" yaml:"db"`

	// Timeout bounds each Redis call a request waits on (mode: exact) and
	// the health probe while Redis is down. Default 100ms.
	Timeout Duration `json:"timeout" yaml:"timeout"`

	// SyncPeriod is how often hybrid limits reconcile with Redis: the
	// over-admission bound grows with it, the Redis load shrinks.
	// Default 50ms.
	SyncPeriod Duration `json:"sync_period" yaml:"sync_period"`
}

// Rate limit field values.
const (
	KeyIP          = "ip"
	KeyRoute       = "route"
	KeyConsumer    = "consumer"
	KeyHeaderPfx   = "header:"
	ScopeLocal     = "local"
	ScopeGlobal    = "global"
	ModeHybrid     = "hybrid"
	ModeExact      = "exact"
	RedisErrOpen   = "open"
	RedisErrClosed = "closed"
	HeadersIETF    = "ietf"
	HeadersLegacy  = "legacy"
	HeadersBoth    = "both"
	HeadersNone    = "none"
	// RateLimitOff is the rate_limit value of a route that opts out of the
	// top-level default.
	RateLimitOff = "off"
)

// Rate limit defaults.
const (
	DefaultRateLimitPer    = Duration(time.Second)
	DefaultRedisTimeout    = Duration(100 * time.Millisecond)
	DefaultRedisSyncPeriod = Duration(50 * time.Millisecond)
	DefaultConcurrencyCode = 503
)

// KeyPart is one component of a rate limit key.
type KeyPart struct {
	// Kind is KeyIP, KeyRoute, KeyConsumer or KeyHeaderPfx (then Header
	// names it).
	Kind string
	// Header is the header name of a "header:NAME" part.
	Header string
}

// ParseKey parses a rate limit or concurrency key such as
// "ip+header:X-Tenant". The error says what to change.
func ParseKey(s string) ([]KeyPart, error) {
	if s == "" {
		return nil, fmt.Errorf(`must not be empty; use "ip", "header:NAME", "route" or a combination such as "ip+header:X-Tenant"`)
	}
	var parts []KeyPart
	for p := range strings.SplitSeq(s, "+") {
		kp, err := parseKeyPart(strings.TrimSpace(p))
		if err != nil {
			return nil, err
		}
		for _, q := range parts {
			if q.Kind == kp.Kind && strings.EqualFold(q.Header, kp.Header) {
				return nil, fmt.Errorf("%q lists %q twice; keep one", s, p)
			}
		}
		parts = append(parts, kp)
	}
	if len(parts) > 1 {
		for _, p := range parts {
			if p.Kind == KeyRoute {
				return nil, fmt.Errorf(`%q: "route" can't be combined: every route has its own buckets already, so drop it`, s)
			}
		}
	}
	return parts, nil
}

func parseKeyPart(p string) (KeyPart, error) {
	switch {
	case p == KeyIP || p == KeyRoute:
		return KeyPart{Kind: p}, nil
	case p == KeyConsumer:
		return KeyPart{Kind: p}, nil
	case strings.HasPrefix(p, KeyHeaderPfx):
		name := strings.TrimSpace(p[len(KeyHeaderPfx):])
		if !validToken(name) {
			return KeyPart{}, fmt.Errorf(`%q: the header name must be a token, such as "header:X-Tenant"`, p)
		}
		return KeyPart{Kind: KeyHeaderPfx, Header: name}, nil
	}
	known := []string{KeyIP, KeyRoute, KeyConsumer, "header:NAME"}
	return KeyPart{}, fmt.Errorf("unknown key part %q (known: %s, and combinations joined by '+')%s", p, strings.Join(known, ", "), didYouMean(p, known))
}

// RouteRateLimits returns the limits that apply to r: its own, or the
// top-level default when it sets none. Empty when neither has any (or r
// opted out with "off").
func (c *Config) RouteRateLimits(r *Route) RateLimits {
	if r.RateLimit != nil {
		return r.RateLimit
	}
	return c.RateLimit
}

// PerString formats a period compactly: "1s", "1m", "1h", "1h30m", "250ms".
func PerString(d Duration) string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalYAML writes nil (absent: the default applies) as null, an empty
// list as "off", and a list as it is, so a config round-trips.
func (ls RateLimits) MarshalYAML() (any, error) {
	switch {
	case ls == nil:
		return nil, nil
	case len(ls) == 0:
		return RateLimitOff, nil
	}
	return []RateLimit(ls), nil
}

var rateLimitsType = reflect.TypeFor[RateLimits]()

// decodeRateLimits decodes a rate_limit value: one mapping, a list of
// them, or "off".
func (d *decoder) decodeRateLimits(path string, v any, dst reflect.Value) {
	switch v := v.(type) {
	case mapping:
		s := reflect.MakeSlice(dst.Type(), 1, 1)
		d.decode(path, v, s.Index(0))
		dst.Set(s)
	case []any:
		d.decodeSlice(path, v, dst)
	case string:
		s, ok := d.scalar(path, "", v)
		if ok && strings.TrimSpace(s) == RateLimitOff {
			dst.Set(reflect.MakeSlice(dst.Type(), 0, 0))
		} else if ok {
			d.errs.add(path, `want a mapping such as {rate: 100, per: 1s}, a list of them, or "off", got `+describe(s))
		}
	default:
		d.errs.add(path, `want a mapping such as {rate: 100, per: 1s}, a list of them, or "off", got `+describe(v))
	}
}

// setRateLimitDefaults fills the defaults of the top-level and route rate
// limits, route concurrency and redis.
func (c *Config) setRateLimitDefaults() {
	c.RateLimit.setDefaults()
	for _, r := range c.Routes {
		if r == nil {
			continue
		}
		r.RateLimit.setDefaults()
		if r.Concurrency != nil {
			setZero(&r.Concurrency.Status, DefaultConcurrencyCode)
		}
	}
	if c.Redis.Address != "" {
		setZero(&c.Redis.Timeout, DefaultRedisTimeout)
		setZero(&c.Redis.SyncPeriod, DefaultRedisSyncPeriod)
	}
}

func (ls RateLimits) setDefaults() {
	for i := range ls {
		l := &ls[i]
		setZero(&l.Per, DefaultRateLimitPer)
		setZero(&l.Burst, l.Rate)
		setZero(&l.Key, KeyIP)
		setZero(&l.Scope, ScopeLocal)
		setZero(&l.Headers, HeadersIETF)
		if l.Scope == ScopeGlobal {
			setZero(&l.Mode, ModeHybrid)
			setZero(&l.OnRedisError, RedisErrOpen)
		}
		if l.Name == "" && l.Rate > 0 && l.Per > 0 {
			l.Name = strconv.Itoa(l.Rate) + "-per-" + PerString(l.Per)
		}
	}
}

// validateRateLimitConfig checks the top-level and route rate limits,
// route concurrency, and redis when a limit is global.
func validateRateLimitConfig(errs *Errors, c *Config) {
	global := validateRateLimits(errs, "rate_limit", c.RateLimit)
	for i, r := range c.Routes {
		if r == nil {
			continue
		}
		p := pathIndex("routes", i)
		if g := validateRateLimits(errs, p+".rate_limit", r.RateLimit); global == "" {
			global = g
		}
		if r.Auth == nil {
			for i := range r.RateLimit {
				if keyHasConsumer(r.RateLimit[i].Key) {
					errs.add(limitPath(p+".rate_limit", i, len(r.RateLimit))+".key", `"consumer" needs the route to authenticate its requests; add auth (such as auth: {any_of: [api_key]}) or key by "ip"`)
				}
			}
		}
		if r.Concurrency != nil {
			validateConcurrency(errs, p+".concurrency", r.Concurrency)
		}
	}
	validateRedis(errs, "redis", &c.Redis, global)
}

// keyHasConsumer reports whether the key s has a consumer part.
func keyHasConsumer(s string) bool {
	parts, err := ParseKey(s)
	if err != nil {
		return false
	}
	for _, p := range parts {
		if p.Kind == KeyConsumer {
			return true
		}
	}
	return false
}

// limitPath is the path of limit i of n: "rate_limit" for a single limit,
// "rate_limit[i]" in a list.
func limitPath(path string, i, n int) string {
	if n == 1 {
		return path
	}
	return pathIndex(path, i)
}

// validateRateLimits checks ls and returns the path of its first global
// limit, or "".
func validateRateLimits(errs *Errors, path string, ls RateLimits) (global string) {
	for i := range ls {
		p := limitPath(path, i, len(ls))
		l := &ls[i]
		validateRateLimit(errs, p, l)
		if l.Scope == ScopeGlobal && global == "" {
			global = p + ".scope"
		}
		for j := range i {
			if l.Name != "" && ls[j].Name == l.Name {
				errs.add(p+".name", fmt.Sprintf("%q is also the name of %s; set name to tell them apart (it names the limit in RateLimit headers and Redis keys)", l.Name, limitPath(path, j, len(ls))))
				break
			}
		}
	}
	return global
}

func validateRateLimit(errs *Errors, p string, l *RateLimit) {
	if l.Rate <= 0 {
		errs.add(p+".rate", fmt.Sprintf("must be > 0 (requests per `per`), got %d", l.Rate))
	}
	positiveDuration(errs, p+".per", l.Per)
	minPer := int64(l.Rate)
	unit := "nanosecond"
	if l.Scope == ScopeGlobal {
		minPer, unit = int64(l.Rate)*1000, "microsecond"
	}
	if l.Rate > 0 && l.Per > 0 && int64(l.Per) < minPer {
		errs.add(p+".per", fmt.Sprintf("rate %d per %s is above one request per %s; raise per or lower rate", l.Rate, l.Per, unit))
	}
	if l.Burst < 0 {
		errs.add(p+".burst", fmt.Sprintf("must be >= 0 (0 means rate), got %d", l.Burst))
	} else if l.Rate > 0 && l.Per > 0 && int64(l.Burst) > math.MaxInt64/4/max(1, int64(l.Per)/int64(l.Rate)) {
		errs.add(p+".burst", fmt.Sprintf("burst %d is too large for rate %d per %s; lower it", l.Burst, l.Rate, l.Per))
	}
	if l.Name != "" && !validName(l.Name) {
		errs.add(p+".name", fmt.Sprintf("%q may only use %s", l.Name, nameCharset))
	}
	if _, err := ParseKey(l.Key); err != nil {
		errs.add(p+".key", err.Error())
	}
	oneOf(errs, p+".scope", l.Scope, ScopeLocal, ScopeGlobal)
	oneOf(errs, p+".headers", l.Headers, HeadersIETF, HeadersLegacy, HeadersBoth, HeadersNone)
	if l.MaxKeys < 0 {
		errs.add(p+".max_keys", fmt.Sprintf("must be >= 0 (0 means 1000000), got %d", l.MaxKeys))
	}
	if l.Scope != ScopeGlobal {
		if l.Mode != "" {
			errs.add(p+".mode", fmt.Sprintf("%q applies to scope: global only; remove it or set scope: global", l.Mode))
		}
		if l.OnRedisError != "" {
			errs.add(p+".on_redis_error", fmt.Sprintf("%q applies to scope: global only; remove it or set scope: global", l.OnRedisError))
		}
		return
	}
	oneOf(errs, p+".mode", l.Mode, ModeHybrid, ModeExact)
	oneOf(errs, p+".on_redis_error", l.OnRedisError, RedisErrOpen, RedisErrClosed)
}

func oneOf(errs *Errors, path, v string, known ...string) {
	for _, k := range known {
		if v == k {
			return
		}
	}
	errs.add(path, fmt.Sprintf("unknown value %q (known: %s)%s", v, strings.Join(known, ", "), didYouMean(v, known)))
}

func validateConcurrency(errs *Errors, p string, c *Concurrency) {
	if c.Max <= 0 {
		errs.add(p+".max", fmt.Sprintf("must be > 0 (requests in flight at once), got %d", c.Max))
	}
	if c.Queue < 0 {
		errs.add(p+".queue", fmt.Sprintf("must be >= 0 (0 means no queue), got %d", c.Queue))
	}
	nonNegativeDuration(errs, p+".wait", c.Wait)
	if c.Queue > 0 && c.Wait == 0 {
		errs.add(p+".wait", fmt.Sprintf(`queue %d needs a wait > 0, such as "100ms": how long a queued request waits for a slot`, c.Queue))
	}
	if c.Key != "" {
		parts, err := ParseKey(c.Key)
		switch {
		case err != nil:
			errs.add(p+".key", err.Error())
		case len(parts) == 1 && parts[0].Kind == KeyRoute:
			errs.add(p+".key", `"route" is what an absent key means; remove it`)
		}
		if c.Queue > 0 {
			errs.add(p+".queue", "a queue works per route only; remove key, or the queue")
		}
	}
	if c.Status != 429 && c.Status != 503 {
		errs.add(p+".status", fmt.Sprintf("want 503 or 429, got %d", c.Status))
	}
}

func validateRedis(errs *Errors, p string, r *Redis, global string) {
	if r.Address == "" {
		if global != "" {
			errs.add(p+".address", fmt.Sprintf(`required: %s is "global", which shares the limit through Redis; set redis: {address: "127.0.0.1:6379"}, or scope: local`, global))
		}
		return
	}
	validateAddr(errs, p+".address", r.Address)
	if r.DB < 0 {
		errs.add(p+".db", fmt.Sprintf("must be >= 0, got %d", r.DB))
	}
	positiveDuration(errs, p+".timeout", r.Timeout)
	positiveDuration(errs, p+".sync_period", r.SyncPeriod)
}
