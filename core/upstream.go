package core

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
	"fastgate/core/http1"
	"fastgate/lb"
)

// balancer picks a target index for a request: key is the request's
// balancing key for hashing policies (others ignore it); skip has bit i set
// for targets already tried. -1 means no target is available.
// Implementations are safe for concurrent use and allocate nothing.
type balancer interface {
	Pick(key, skip uint64) int
}

var _ balancer = lb.Balancer(nil)

// upstream is a compiled config.Upstream: its targets, their balancer and
// the guards around them. The breaker, the retry budget and the health
// checker outlive the snapshot when the next config keeps the upstream
// (see compileUpstream), so limits hold across reloads.
type Upstream struct {
	name     string
	targets  []*target
	set      *lb.Set
	balancer balancer
	// perTry bounds one attempt (0: only the route's timeout does);
	// request is the default route timeout.
	perTry, request time.Duration
	metrics         *upstreamMetrics

	breaker *lb.Breaker
	// pending: the breaker limits requests waiting for a connection, so
	// attempts count themselves pending while they acquire one.
	pending bool
	budget  *lb.Budget
	// budgetKey fingerprints the budget's settings, to keep it on reload.
	budgetKey  string
	retry      retryPolicy
	failStatus statusSet // statuses that count as target failures
	// ewma: the balancer reads latency (p2c_ewma), so attempts Observe it.
	ewma     bool
	hashKind int
	hashName string
	health   *healthChecker
	// dial is Options.Dial (tests), nil for TCP: connections made outside
	// the pools (WebSocket) use it too.
	dial func(string) (net.Conn, error)
	// tls is the compiled tls block; nil when no target is https.
	tls *upstreamTLS
}

// target is one endpoint: its balancing state and its connection pool. A
// target outlives the snapshot that created it when the next config keeps
// the same upstream, address and pool settings (see compileUpstream), so a
// reload neither drops pooled connections nor resets balancing state.
type target struct {
	addr string
	lb   *lb.Target
	hc   *fasthttp.HostClient
	host []byte // the Host header for rewrite.host "target"
	// tls: the target is https; nil for http.
	tls *targetTLS
	// settings fingerprints the config the HostClient was built from.
	settings string
	codes    *codeCounters

	maxBufferedBody int64
	maxResponseBody int64
	// readIdle bounds each read of a streamed body: per_try, or the
	// upstream's request timeout.
	readIdle time.Duration
}

// compileUpstream builds the upstream name of u. Targets of old (the same
// upstream in the snapshot being replaced) are reused when their pool
// settings are unchanged; their balancing state is reused in any case.
func compileUpstream(name string, u *config.Upstream, dial func(string) (net.Conn, error), old *Upstream, m *Metrics) (*Upstream, error) {
	up := &Upstream{
		dial:    dial,
		name:    name,
		perTry:  u.Timeouts.PerTry.D(),
		request: u.Timeouts.Request.D(),
		metrics: m.upstream(name),
	}
	settings := targetSettings(u)
	var err error
	if up.tls, err = compileUpstreamTLS(u); err != nil {
		return nil, err
	}
	lbTargets := make([]*lb.Target, 0, len(u.Targets))
	for _, t := range u.Targets {
		addr, err := t.Addr()
		if err != nil {
			return nil, err
		}
		var prev *target
		if old != nil {
			prev = old.target(addr)
		}
		key := settings
		if t.TLS() {
			key += up.tls.key
		}
		var tg *target
		switch {
		case prev != nil && prev.settings == key:
			tg = prev
			tg.lb.SetWeight(t.Weight)
		default:
			tg = newTarget(addr, u, dial, up.tls.target(name, addr, t.TLS(), u.Pool.MaxIdleConnDuration.D()))
			tg.settings = key
			if prev != nil {
				tg.lb = prev.lb
				tg.lb.SetWeight(t.Weight)
			} else {
				tg.lb = lb.NewTarget(addr, t.Weight)
			}
			tg.readIdle = up.request
			if up.perTry > 0 {
				tg.readIdle = up.perTry
			}
			tg.codes = m.target(name, addr, tg.lb)
		}
		up.targets = append(up.targets, tg)
		lbTargets = append(lbTargets, tg.lb)
	}
	var prevSet *lb.Set
	if old != nil {
		prevSet = old.set
	}
	if up.set, err = lb.NewSet(lbTargets, prevSet, setOptions(u)); err != nil {
		return nil, err
	}
	if up.balancer, err = lb.New(policy(u), up.set, lb.Options{BoundedLoad: u.Hash.BoundedLoad}); err != nil {
		return nil, fmt.Errorf("balancer: %w", err)
	}
	up.compileResilience(u, old)
	if up.health, err = newHealthChecker(up, u, old); err != nil {
		return nil, fmt.Errorf("health.active: %w", err)
	}
	return up, nil
}

// policy returns the lb policy name of u's balancer.
func policy(u *config.Upstream) string {
	if u.Balancer == config.BalancerConsistentHash && u.Hash.Algorithm == config.HashRing {
		return lb.PolicyRing
	}
	if u.Balancer == "" {
		return lb.PolicyRoundRobin
	}
	return u.Balancer
}

// setOptions maps u's health config to the lb set options.
func setOptions(u *config.Upstream) lb.SetOptions {
	h := &u.Health
	o := lb.SetOptions{
		PanicThreshold:     h.PanicThreshold,
		HealthyThreshold:   h.Active.Healthy,
		UnhealthyThreshold: h.Active.Unhealthy,
		EjectionTime:       h.Passive.EjectionTime.D(),
		MaxEjectionTime:    h.Passive.MaxEjectionTime.D(),
		MaxEjectionPercent: h.Passive.MaxEjectionPercent,
	}
	if n := h.Passive.ConsecutiveFailures; n != nil {
		o.ConsecutiveFailures = *n
	}
	return o
}

// compileResilience sets up's retry policy, breaker, budget, failure
// statuses and hash key, taking the breaker and (when its settings are
// unchanged) the budget over from old.
func (up *Upstream) compileResilience(u *config.Upstream, old *Upstream) {
	cb := &u.CircuitBreaker
	if old != nil {
		up.breaker = old.breaker
		up.breaker.SetLimits(cb.MaxRequests, cb.MaxPending)
	} else {
		up.breaker = lb.NewBreaker(cb.MaxRequests, cb.MaxPending)
	}
	up.pending = cb.MaxPending > 0
	up.budgetKey = fmt.Sprint(u.Retries.Budget, u.Retries.MinRetries)
	if old != nil && old.budgetKey == up.budgetKey {
		up.budget = old.budget
	} else {
		up.budget = lb.NewBudget(u.Retries.Budget, u.Retries.MinRetries)
	}
	up.retry = compileRetries(&u.Retries)
	for _, code := range u.Health.Passive.Statuses() {
		up.failStatus.add(code)
	}
	up.ewma = u.Balancer == config.BalancerP2CEWMA
	up.hashKind, up.hashName = compileHashKey(&u.Hash)
}

// targetSettings fingerprints what a target's HostClient is built from.
func targetSettings(u *config.Upstream) string {
	return fmt.Sprintf("%+v|%s|%s|%s", u.Pool, u.Timeouts.Connect, u.Timeouts.PerTry, u.Timeouts.Request)
}

// target returns the upstream's target at addr, or nil.
func (up *Upstream) target(addr string) *target {
	for _, t := range up.targets {
		if t.addr == addr {
			return t
		}
	}
	return nil
}

func (up *Upstream) hasTarget(addr string) bool { return up.target(addr) != nil }

// uses reports whether t is one of the upstream's targets.
func (up *Upstream) uses(t *target) bool {
	for _, u := range up.targets {
		if u == t {
			return true
		}
	}
	return false
}

// newTarget builds the target at addr and its pool; tt, when not nil,
// makes the pool's connections TLS.
func newTarget(addr string, u *config.Upstream, dial func(string) (net.Conn, error), tt *targetTLS) *target {
	p := &u.Pool
	connect := u.Timeouts.Connect.D()
	// No TCP keep-alive probes on pooled connections, as nginx's upstream
	// keepalive: max_idle_conn_duration closes idle ones, and Go's default
	// probes cost four setsockopt calls per dial.
	dialer := &fasthttp.TCPDialer{KeepAlive: -1}
	hc := &fasthttp.HostClient{
		Addr:                     addr,
		NoDefaultUserAgentHeader: true,
		MaxConns:                 p.MaxConns,
		MaxIdleConnDuration:      p.MaxIdleConnDuration.D(),
		MaxConnWaitTimeout:       p.MaxConnWaitTimeout.D(),
		// The most recently used connection first, as nginx's keepalive
		// cache: after a burst the extra connections idle out
		// (MaxIdleConnDuration) instead of being cycled through and kept.
		ConnPoolStrategy:    fasthttp.LIFO,
		ReadBufferSize:      p.ReadBufferSize.Int(),
		WriteBufferSize:     p.WriteBufferSize.Int(),
		MaxResponseBodySize: p.MaxResponseBody.Int(),
		ReadTimeout:         u.Timeouts.Request.D(),
		WriteTimeout:        u.Timeouts.Request.D(),
		// The gateway owns retries; the HostClient must not replay requests.
		MaxIdemponentCallAttempts: 1,
		// The upstream receives exactly the path the gateway routed on.
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: false,
		SecureErrorLogMessage:         true,
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			if timeout <= 0 || timeout > connect {
				timeout = connect
			}
			return dialRaw(dialer, addr, timeout)
		},
	}
	if dial != nil {
		hc.DialTimeout, hc.Dial = nil, dial
	}
	host := strings.TrimSuffix(addr, ":80")
	if tt != nil {
		// The handshake is the dial's: the pool gets connections ready to
		// use, and the plain-TCP send fast path stays off for them.
		hc.IsTLS, hc.TLSConfig = true, tt.h1
		hc.Dial, hc.DialTimeout = nil, func(_ string, timeout time.Duration) (net.Conn, error) {
			if timeout <= 0 || timeout > connect {
				timeout = connect
			}
			return tt.dial(dial, timeout)
		}
		host = strings.TrimSuffix(addr, ":443")
	}
	return &target{
		addr:            addr,
		hc:              hc,
		tls:             tt,
		host:            []byte(host),
		maxBufferedBody: int64(p.MaxBufferedBody),
		maxResponseBody: int64(p.MaxResponseBody),
	}
}

// attempt is the outcome of one roundTrip.
type attempt struct {
	err  *Error // nil: resp holds the upstream's response
	fail failure
	// stale: the request failed on a reused keep-alive connection before
	// any response byte, the mark of a connection the upstream closed while
	// idle, so it may be sent again on a new connection.
	stale bool
	// written: bytes of the request may have reached the upstream.
	written bool
}

// roundTrip sends req to t and reads the response into resp before deadline.
// Bodies with a known length up to maxBufferedBody are read whole; others
// are streamed: resp gets a body stream that returns the connection to the
// pool when the server has written it. br, when not nil, limits the
// attempts waiting for a connection (circuit_breaker.max_pending). x, when
// not nil, is the client request: its watchdog may end the attempt.
func (t *target) roundTrip(req *fasthttp.Request, resp *fasthttp.Response, now, deadline time.Time, br *lb.Breaker, x *exchange) attempt {
	t.lb.Begin()
	streamed, a := t.do(req, resp, now, deadline, br, x)
	if !streamed {
		t.lb.End()
	}
	return a
}

// do is roundTrip without the in-flight accounting. A streamed response ends
// its in-flight count when its stream closes.
func (t *target) do(req *fasthttp.Request, resp *fasthttp.Response, now, deadline time.Time, br *lb.Breaker, x *exchange) (streamed bool, a attempt) {
	hc := t.hc
	if br != nil && !br.TryPending() {
		return false, attempt{err: errBreakerPending, fail: failLimit}
	}
	cc, cerr := hc.AcquireConn(deadline.Sub(now), false)
	if br != nil {
		br.EndPending()
	}
	if cerr != nil {
		e, f := acquireError(cerr), failConnect
		if e == errPoolExhausted {
			f = failPool
		}
		return false, attempt{err: e, fail: f}
	}
	conn := cc.Conn()
	if !x.track(conn) {
		hc.CloseConn(cc) // the watchdog may have set its deadline
		return false, attempt{err: errClientGone, fail: failLimit}
	}
	reused := cc.CreatedTime().Before(now)
	if err := setDeadline(conn, now, deadline); err != nil {
		x.untrack(conn)
		hc.CloseConn(cc)
		return false, attempt{err: errUpstreamReset, fail: failReset, stale: reused}
	}
	if err := t.send(conn, req); err != nil {
		x.untrack(conn)
		hc.CloseConn(cc)
		return false, attempt{err: exchangeError(err), fail: classify(err), stale: reused && !isTimeout(err), written: true}
	}

	br2 := hc.AcquireReader(conn)
	if err := readResponseHeader(resp, br2); err != nil {
		hc.ReleaseReader(br2)
		x.untrack(conn)
		hc.CloseConn(cc)
		if werr := sendError(conn); werr != nil {
			return false, attempt{err: exchangeError(werr), fail: classify(werr), stale: reused && !isTimeout(werr), written: true}
		}
		if e := t.tls.alerted(conn); e != nil {
			// The target refused the TLS session: nothing was processed.
			return false, attempt{err: e, fail: failConnect, written: true}
		}
		return false, attempt{err: exchangeError(err), fail: classify(err), stale: reused && isEmptyRead(err), written: true}
	}
	keepAlive := !resp.ConnectionClose()
	n := resp.Header.ContentLength()
	skip := noResponseBody(req, resp)
	if !skip && t.maxResponseBody > 0 && int64(n) > t.maxResponseBody {
		hc.ReleaseReader(br2)
		x.untrack(conn)
		hc.CloseConn(cc)
		return false, attempt{err: errUpstreamTooLarge, fail: failProtocol, written: true}
	}
	switch {
	case skip:
		resp.SkipBody = true
	case n >= 0 && int64(n) <= t.maxBufferedBody:
		if err := resp.ReadBody(br2, 0); err != nil {
			hc.ReleaseReader(br2)
			x.untrack(conn)
			hc.CloseConn(cc)
			return false, attempt{err: exchangeError(err), fail: classify(err), written: true}
		}
	default:
		if x.untrack(conn) {
			hc.ReleaseReader(br2)
			hc.CloseConn(cc)
			return false, attempt{err: errClientGone, fail: failLimit, written: true}
		}
		// The client's own response: the request completes when the
		// stream closes. Another response (a fan-out's) is the caller's.
		var owner *exchange
		if x != nil && resp == &x.ctx.Response {
			owner = x
		}
		startStream(resp, t, cc, br2, n, keepAlive, owner, (*fasthttp.HostClient).ReleaseConn, (*fasthttp.HostClient).CloseConn)
		return true, attempt{written: true}
	}
	hc.ReleaseReader(br2)
	if x.untrack(conn) || !keepAlive {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return false, attempt{written: true}
}

// classify maps an exchange error to its failure class.
func classify(err error) failure {
	switch {
	case isTimeout(err):
		return failTimeout
	case isEmptyRead(err) || isReset(err):
		return failReset
	}
	return failProtocol
}

// readResponseHeader reads the final response header, skipping 1xx interim
// responses (101 is final: upgrades are not supported and get 502). Each
// head is checked strictly first (package http1): a response that could
// desynchronize the connection or smuggle a second response (CL with TE,
// two Content-Lengths, obs-fold, NUL or bare CR, a bad status line) is an
// error, and the caller closes the connection.
func readResponseHeader(resp *fasthttp.Response, br *bufio.Reader) error {
	for i := 0; i < 8; i++ {
		if err := checkResponseHead(br); err != nil {
			return err
		}
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		code := resp.StatusCode()
		if code == fasthttp.StatusSwitchingProtocols {
			return errUpstreamBadResp
		}
		if code >= 200 {
			return nil
		}
	}
	return errUpstreamBadResp
}

// checkResponseHead waits until br holds a whole response head and checks
// it with http1.CheckResponseHead, consuming nothing: fasthttp then parses
// the same buffered bytes.
func checkResponseHead(br *bufio.Reader) error {
	n := 1
	for {
		if _, err := br.Peek(n); err != nil {
			// Timeouts, resets, a full buffer: fasthttp's Read meets the
			// same error and reports it in the form classify knows.
			return nil
		}
		b, _ := br.Peek(br.Buffered())
		if end := http1.HeadEnd(b); end >= 0 {
			return http1.CheckResponseHead(b[:end])
		}
		if n = len(b) + 1; n > br.Size() {
			return nil // too large: fasthttp's Read says so
		}
	}
}

// noResponseBody reports whether resp has no body by RFC 9112 section 6.3.
func noResponseBody(req *fasthttp.Request, resp *fasthttp.Response) bool {
	code := resp.StatusCode()
	return req.Header.IsHead() || code == fasthttp.StatusNoContent ||
		code == fasthttp.StatusNotModified || code < 200
}

// acquireError maps a failure to get a connection to its response.
func acquireError(err error) *Error {
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrTimeout):
		// Waited for a free connection of a full pool.
		return errPoolExhausted
	case isTimeout(err):
		return errUpstreamTimeout
	default:
		if e := tlsGatewayError(err); e != nil {
			return e
		}
		return errUpstreamConnect
	}
}

// exchangeError maps a failure while writing the request or reading the
// response to its response.
func exchangeError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case isTimeout(err):
		return errUpstreamTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errUpstreamTooLarge
	case isEmptyRead(err) || isReset(err):
		return errUpstreamReset
	default:
		return errUpstreamBadResp
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// isEmptyRead reports whether the connection closed before the first
// response byte, the mark of a keep-alive connection the upstream closed.
func isEmptyRead(err error) bool {
	var ee fasthttp.ErrNothingRead
	return errors.As(err, &ee) || errors.Is(err, io.EOF) || isReset(err)
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, fasthttp.ErrConnectionClosed)
}
