package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Balancer policies (upstreams.NAME.balancer). BalancerRoundRobin is in
// defaults.go.
const (
	// BalancerWeighted is smooth weighted round robin (nginx).
	BalancerWeighted = "weighted"
	// BalancerRandom picks uniformly, by weight.
	BalancerRandom = "random"
	// BalancerLeastConn picks the target with the fewest requests in flight
	// per unit of weight.
	BalancerLeastConn = "least_conn"
	// BalancerP2C picks the less loaded of two random targets (in flight).
	BalancerP2C = "p2c"
	// BalancerP2CEWMA picks the faster of two random targets by peak-EWMA
	// latency times in-flight (Finagle, Linkerd).
	BalancerP2CEWMA = "p2c_ewma"
	// BalancerConsistentHash maps a request key to a target (hash.algorithm:
	// Maglev by default, or ring); hash is required.
	BalancerConsistentHash = "consistent_hash"
	// BalancerMaglev and BalancerRing are consistent_hash with that
	// algorithm; hash is required.
	BalancerMaglev = "maglev"
	BalancerRing   = "ring"
)

// Balancers lists every accepted balancer name.
var Balancers = []string{
	BalancerRoundRobin, BalancerWeighted, BalancerRandom, BalancerLeastConn, BalancerP2C,
	BalancerP2CEWMA, BalancerConsistentHash, BalancerMaglev, BalancerRing,
}

// IsHashBalancer reports whether the policy b balances on a request key.
func IsHashBalancer(b string) bool {
	return b == BalancerConsistentHash || b == BalancerMaglev || b == BalancerRing
}

// Hash algorithms (hash.algorithm).
const (
	HashMaglev = "maglev"
	HashRing   = "ring"
)

// Hash says what a consistent-hash upstream balances on.
type Hash struct {
	// Key is where the request key comes from: "header:NAME", "cookie:NAME",
	// "query:NAME", "ip" (the client IP, X-Forwarded-For aware with
	// server.trusted_proxies) or "path" (the normalized request path,
	// before rewrites). A request without the key is balanced at random.
	// Required for consistent-hash balancers.
	Key string `json:"key" yaml:"key"`

	// BoundedLoad is the balance factor of consistent hashing with bounded
	// loads: no target takes more than BoundedLoad × the mean in-flight
	// requests (weighted); overflow walks the key's preference order.
	// Default 0: off. Otherwise at least 1; 1.25 is a good start.
	BoundedLoad float64 `json:"bounded_load" yaml:"bounded_load"`

	// Algorithm is "maglev" (the default: a lookup table, the most even
	// spread) or "ring" (ketama, 160 points per weight unit,
	// nginx-compatible). Only with balancer consistent_hash.
	Algorithm string `json:"algorithm" yaml:"algorithm"`
}

// Hash key sources (the part of Hash.Key before ':').
const (
	HashKeyHeader = "header"
	HashKeyCookie = "cookie"
	HashKeyQuery  = "query"
	HashKeyIP     = "ip"
	HashKeyPath   = "path"
)

// ParseHashKey splits a Hash.Key into its source and name ("" for ip and
// path).
func ParseHashKey(k string) (source, name string, err error) {
	source, name, hasName := strings.Cut(k, ":")
	switch source {
	case HashKeyIP, HashKeyPath:
		if hasName {
			return "", "", fmt.Errorf("%q takes no name; write %q", k, source)
		}
		return source, "", nil
	case HashKeyHeader, HashKeyCookie, HashKeyQuery:
		if name == "" {
			example := map[string]string{HashKeyHeader: "X-User-ID", HashKeyCookie: "session", HashKeyQuery: "user"}[source]
			return "", "", fmt.Errorf("%q needs a name, such as %q", k, source+":"+example)
		}
		if source == HashKeyHeader && !validToken(name) {
			return "", "", fmt.Errorf("%q: %q is not a header name", k, name)
		}
		return source, name, nil
	}
	return "", "", fmt.Errorf(`unknown key %q; use "header:NAME", "cookie:NAME", "query:NAME", "ip" or "path"`, k)
}

// Retries says when a failed attempt is sent again, to another target.
// A request is retried only when the failure is listed in On, and its
// method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) or no byte
// of it reached the upstream (a connect error); never once the response
// has started streaming to the client; always within the route's timeout.
type Retries struct {
	// Attempts is the most tries per request, the first included (Envoy's
	// num_retries + 1). Default 2: one retry. 1: no retries.
	Attempts int `json:"attempts" yaml:"attempts"`

	// Budget caps concurrent retries to this share of the upstream's active
	// requests (Envoy's retry_budget.budget_percent / 100), so retries
	// cannot multiply the load of a failing upstream. Default 0.2.
	// 0 takes the default; 1 lets every active request retry.
	Budget float64 `json:"budget" yaml:"budget"`

	// MinRetries is the number of concurrent retries the budget always
	// allows, however few requests are active (Envoy's
	// min_retry_concurrency). Default 3; 0 takes the default.
	MinRetries int `json:"min_retries" yaml:"min_retries"`

	// On lists the failures retried: connect_error (no connection: refused,
	// connect timeout, pool full), reset (the connection closed before a
	// whole response header), timeout (timeouts.per_try passed), and
	// response statuses: a code 400-599, written 502 or "502", or a class,
	// 4xx or 5xx (see StatusList). Default [connect_error, reset, timeout,
	// 502, 503, 504]. An empty list given explicitly ([]) retries nothing.
	// Statuses returns the codes.
	On StatusList `json:"on" yaml:"on"`

	// Backoff is the wait before a retry of a request that went out:
	// uniform in [0, min(max, base × 2^retry)) ("full jitter"). A refused
	// connection (nothing sent) is retried on another target at once.
	Backoff Backoff `json:"backoff" yaml:"backoff"`
}

// Retry conditions (Retries.On) other than statuses, matched exactly
// (lowercase).
const (
	RetryConnectError = "connect_error"
	RetryReset        = "reset"
	RetryTimeout      = "timeout"
)

// DefaultRetryOn is Retries.On when absent.
var DefaultRetryOn = []string{RetryConnectError, RetryReset, RetryTimeout, "502", "503", "504"}

// Backoff is a jittered exponential backoff.
type Backoff struct {
	// Base is the backoff ceiling of the first retry. Default 25ms.
	Base Duration `json:"base" yaml:"base"`
	// Max caps the ceiling. Default 250ms.
	Max Duration `json:"max" yaml:"max"`
}

// Health configures health checking of an upstream's targets.
type Health struct {
	// Active probes each target over HTTP from one goroutine per upstream.
	Active ActiveHealth `json:"active" yaml:"active"`

	// Passive ejects a target after consecutive failed requests (outlier
	// detection).
	Passive PassiveHealth `json:"passive" yaml:"passive"`

	// PanicThreshold is a percentage: when fewer than this share of the
	// targets are available (healthy and not ejected), the upstream
	// balances over all of them, ignoring health (Envoy's panic mode), as
	// a guard against a health signal that is wrong everywhere at once.
	// Default 50; 0 takes the default; -1 disables panic mode.
	PanicThreshold int `json:"panic_threshold" yaml:"panic_threshold"`
}

// ActiveHealth is the HTTP health check. It is on when Path is set.
type ActiveHealth struct {
	// Path is the request path of the probe (GET), such as "/healthz".
	// Default "": no active checks.
	Path string `json:"path" yaml:"path"`

	// Interval is the time between two probes of a target. Default 5s.
	Interval Duration `json:"interval" yaml:"interval"`

	// Jitter spreads probes: each interval is Interval ± a uniform random
	// share of Jitter. Default Interval/10; 0 takes the default.
	Jitter Duration `json:"jitter" yaml:"jitter"`

	// Timeout bounds one probe, connect included. Default 1s.
	Timeout Duration `json:"timeout" yaml:"timeout"`

	// ExpectedStatus is the status range of a passing probe, "200-399" (the
	// default) or one code such as "200".
	ExpectedStatus string `json:"expected_status" yaml:"expected_status"`

	// Healthy is the number of passed probes in a row that bring a failed
	// target back. Default 2.
	Healthy int `json:"healthy" yaml:"healthy"`

	// Unhealthy is the number of failed probes in a row that take a
	// target out. Default 3.
	Unhealthy int `json:"unhealthy" yaml:"unhealthy"`

	// Host is the Host header of probes. Default "": the target's
	// host:port.
	Host string `json:"host" yaml:"host"`
}

// Enabled reports whether active checks are on.
func (a *ActiveHealth) Enabled() bool { return a.Path != "" }

// PassiveHealth is outlier ejection from the requests' outcomes. A failure
// is a connect error, a reset, a timeout, an invalid response, or a status
// in OnStatus; a full connection pool is not the target's fault and does
// not count.
type PassiveHealth struct {
	// ConsecutiveFailures failed requests in a row eject a target.
	// Default 5 when absent; 0 turns passive ejection off.
	ConsecutiveFailures *int `json:"consecutive_failures" yaml:"consecutive_failures"`

	// EjectionTime is the base ejection: the k-th ejection in a row lasts
	// k × EjectionTime, up to MaxEjectionTime. Default 30s.
	EjectionTime Duration `json:"ejection_time" yaml:"ejection_time"`

	// MaxEjectionTime caps one ejection. Default 300s (10 × the default
	// ejection_time); 0 takes 10 × EjectionTime.
	MaxEjectionTime Duration `json:"max_ejection_time" yaml:"max_ejection_time"`

	// MaxEjectionPercent is the largest share of the upstream's targets
	// ejected at once, in percent; a target is ejected only while
	// (ejected+1) × 100 ≤ MaxEjectionPercent × targets. Default 50
	// (with 3 targets: one at a time); 100: no limit.
	MaxEjectionPercent int `json:"max_ejection_percent" yaml:"max_ejection_percent"`

	// OnStatus lists the response statuses counted as failures: codes
	// 400-599, written 502 or "502", or classes, 4xx or 5xx, which decode
	// to their hundred codes (see StatusCodes). Default [500, 502, 503,
	// 504]; an explicit [] counts none. Statuses returns the codes.
	OnStatus StatusCodes `json:"on_status" yaml:"on_status"`
}

// DefaultFailureStatus is PassiveHealth.OnStatus when absent.
var DefaultFailureStatus = []int{500, 502, 503, 504}

// CircuitBreaker limits an upstream's concurrency. Beyond a limit a request
// gets an immediate 503 with Retry-After: 1; nothing queues.
type CircuitBreaker struct {
	// MaxRequests is the most requests in flight to the upstream at once,
	// retries included in their request. Default 0: unlimited.
	MaxRequests int `json:"max_requests" yaml:"max_requests"`

	// MaxPending is the most requests waiting for a connection to a
	// target at once (dialing, or waiting for pool.max_conn_wait_timeout).
	// Default 0: unlimited.
	MaxPending int `json:"max_pending" yaml:"max_pending"`
}

// Defaults of the resilience fields.
const (
	DefaultRetryAttempts       = 2
	DefaultRetryBudget         = 0.2
	DefaultMinRetries          = 3
	DefaultBackoffBase         = 25 * time.Millisecond
	DefaultBackoffMax          = 250 * time.Millisecond
	DefaultHealthInterval      = 5 * time.Second
	DefaultHealthTimeout       = time.Second
	DefaultExpectedStatus      = "200-399"
	DefaultHealthyThreshold    = 2
	DefaultUnhealthyThreshold  = 3
	DefaultConsecutiveFailures = 5
	DefaultEjectionTime        = 30 * time.Second
	DefaultMaxEjectionPercent  = 50
	DefaultPanicThreshold      = 50
)

func (u *Upstream) setResilienceDefaults() {
	if u.Hash.Algorithm == "" && IsHashBalancer(u.Balancer) {
		u.Hash.Algorithm = HashMaglev
		if u.Balancer == BalancerRing {
			u.Hash.Algorithm = HashRing
		}
	}
	r := &u.Retries
	setZero(&r.Attempts, DefaultRetryAttempts)
	setZero(&r.Budget, DefaultRetryBudget)
	setZero(&r.MinRetries, DefaultMinRetries)
	if r.On == nil {
		r.On = slices.Clone(DefaultRetryOn)
	}
	setZero(&r.Backoff.Base, Duration(DefaultBackoffBase))
	setZero(&r.Backoff.Max, Duration(DefaultBackoffMax))

	h := &u.Health
	setZero(&h.PanicThreshold, DefaultPanicThreshold)
	a := &h.Active
	setZero(&a.Interval, Duration(DefaultHealthInterval))
	setZero(&a.Jitter, a.Interval/10)
	setZero(&a.Timeout, Duration(DefaultHealthTimeout))
	setZero(&a.ExpectedStatus, DefaultExpectedStatus)
	setZero(&a.Healthy, DefaultHealthyThreshold)
	setZero(&a.Unhealthy, DefaultUnhealthyThreshold)
	p := &h.Passive
	if p.ConsecutiveFailures == nil {
		n := DefaultConsecutiveFailures
		p.ConsecutiveFailures = &n
	}
	setZero(&p.EjectionTime, Duration(DefaultEjectionTime))
	setZero(&p.MaxEjectionTime, 10*p.EjectionTime)
	setZero(&p.MaxEjectionPercent, DefaultMaxEjectionPercent)
	if p.OnStatus == nil {
		p.OnStatus = slices.Clone(DefaultFailureStatus)
	}
}

// ParseStatusRange parses "200-399" or "200" into an inclusive range.
func ParseStatusRange(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		return 0, 0, fmt.Errorf(`%q is not a status range; write one such as "200-399" or "200"`, s)
	}
	return lo, hi, nil
}

func validateBalancer(errs *Errors, path, b string) {
	if b != "" && !slices.Contains(Balancers, b) { // "": round_robin
		errs.add(path, fmt.Sprintf("unknown balancer %q (known: %s)%s", b, strings.Join(Balancers, ", "), didYouMean(b, Balancers)))
	}
}

func validateResilience(errs *Errors, path string, u *Upstream) {
	validateHash(errs, path+".hash", u)
	validateRetries(errs, path+".retries", &u.Retries)
	validateHealth(errs, path+".health", &u.Health)
	unlimitedOrMore(errs, path+".circuit_breaker.max_requests", u.CircuitBreaker.MaxRequests)
	unlimitedOrMore(errs, path+".circuit_breaker.max_pending", u.CircuitBreaker.MaxPending)
}

func validateHash(errs *Errors, path string, u *Upstream) {
	h := &u.Hash
	if !IsHashBalancer(u.Balancer) {
		if *h != (Hash{}) {
			errs.add(path, fmt.Sprintf("only consistent_hash balances on a key; set balancer: consistent_hash or remove hash (balancer is %q)", u.Balancer))
		}
		return
	}
	if h.Key == "" {
		errs.add(path+".key", fmt.Sprintf(`required with balancer %s: say what to hash, such as "header:X-User-ID", "cookie:session", "query:user", "ip" or "path"`, u.Balancer))
	} else if _, _, err := ParseHashKey(h.Key); err != nil {
		errs.add(path+".key", err.Error())
	}
	if h.BoundedLoad != 0 && !(h.BoundedLoad >= 1) {
		errs.add(path+".bounded_load", fmt.Sprintf("must be 0 (off) or at least 1, such as 1.25; got %v", h.BoundedLoad))
	}
	switch {
	case h.Algorithm != HashMaglev && h.Algorithm != HashRing:
		errs.add(path+".algorithm", fmt.Sprintf("unknown algorithm %q; use maglev or ring", h.Algorithm))
	case u.Balancer == BalancerMaglev && h.Algorithm != HashMaglev, u.Balancer == BalancerRing && h.Algorithm != HashRing:
		errs.add(path+".algorithm", fmt.Sprintf("%q contradicts balancer %q; use balancer: consistent_hash with hash.algorithm", h.Algorithm, u.Balancer))
	}
}

func validateRetries(errs *Errors, path string, r *Retries) {
	if r.Attempts < 1 || r.Attempts > 10 {
		errs.add(path+".attempts", fmt.Sprintf("must be 1 (no retries) to 10, got %d", r.Attempts))
	}
	if !(r.Budget > 0 && r.Budget <= 1) {
		errs.add(path+".budget", fmt.Sprintf("must be a share in (0, 1], such as 0.2; got %v", r.Budget))
	}
	if r.MinRetries < 0 {
		errs.add(path+".min_retries", fmt.Sprintf("must be >= 0, got %d", r.MinRetries))
	}
	for i, on := range r.On {
		if _, _, ok := parseStatus(on); !ok && !isRetryCondition(on) {
			errs.add(pathIndex(path+".on", i), notARetryConditionMsg(on))
		}
	}
	if r.Backoff.Max < r.Backoff.Base {
		errs.add(path+".backoff.max", fmt.Sprintf("%s is below base %s; raise max or lower base", r.Backoff.Max, r.Backoff.Base))
	}
}

func validateHealth(errs *Errors, path string, h *Health) {
	if h.PanicThreshold < -1 || h.PanicThreshold > 100 {
		errs.add(path+".panic_threshold", fmt.Sprintf("must be a percentage 1-100, or -1 to disable panic mode; got %d", h.PanicThreshold))
	}
	a := &h.Active
	ap := path + ".active"
	if a.Enabled() {
		if !strings.HasPrefix(a.Path, "/") {
			errs.add(ap+".path", fmt.Sprintf(`%q must start with "/", such as "/healthz"`, a.Path))
		}
		positiveDuration(errs, ap+".interval", a.Interval)
		positiveDuration(errs, ap+".timeout", a.Timeout)
		if a.Jitter > a.Interval {
			errs.add(ap+".jitter", fmt.Sprintf("%s is longer than interval %s; keep it below", a.Jitter, a.Interval))
		}
		if _, _, err := ParseStatusRange(a.ExpectedStatus); err != nil {
			errs.add(ap+".expected_status", err.Error())
		}
		if a.Healthy < 1 {
			errs.add(ap+".healthy", fmt.Sprintf("must be >= 1, got %d", a.Healthy))
		}
		if a.Unhealthy < 1 {
			errs.add(ap+".unhealthy", fmt.Sprintf("must be >= 1, got %d", a.Unhealthy))
		}
		if a.Host != "" {
			if msg := rewriteHostProblem(a.Host); msg != "" || a.Host == RewriteHostTarget || a.Host == RewriteHostPreserve {
				errs.add(ap+".host", fmt.Sprintf(`%q is not a host name such as "api.internal"`, a.Host))
			}
		}
	}
	p := &h.Passive
	pp := path + ".passive"
	if p.ConsecutiveFailures != nil && *p.ConsecutiveFailures < 0 {
		errs.add(pp+".consecutive_failures", fmt.Sprintf("must be >= 0 (0 turns ejection off), got %d", *p.ConsecutiveFailures))
	}
	if p.MaxEjectionTime < p.EjectionTime {
		errs.add(pp+".max_ejection_time", fmt.Sprintf("%s is below ejection_time %s; raise it", p.MaxEjectionTime, p.EjectionTime))
	}
	if p.MaxEjectionPercent < 1 || p.MaxEjectionPercent > 100 {
		errs.add(pp+".max_ejection_percent", fmt.Sprintf("must be 1-100, got %d", p.MaxEjectionPercent))
	}
	for i, s := range p.OnStatus {
		if s < 400 || s > 599 {
			errs.add(pathIndex(pp+".on_status", i), fmt.Sprintf("must be a status 400-599, got %d", s))
		}
	}
}
