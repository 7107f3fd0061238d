// Package core is the gateway engine: the fasthttp server, the compiled
// config snapshot, the route table and the proxy to pooled upstream
// connections.
//
// The request path (Gateway.Handler) loads the current Snapshot once,
// matches a route, rewrites the request in place, picks a target through
// package lb and exchanges the request with the target's pooled connection.
// It allocates nothing per request in steady state.
package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/reuseport"

	"fastgate/core/accesslog"
	"fastgate/core/config"
	"fastgate/lb"
)

// Options are the gateway's settings that are not in the config file.
type Options struct {
	// Logger receives the gateway's own logs. Default slog.Default().
	Logger *slog.Logger
	// ReusePort listens with SO_REUSEPORT so several processes can share
	// the address.
	ReusePort bool
	// Dial, when set, replaces TCP dialing of upstream targets, e.g. with
	// in-memory listeners in tests. The connect timeout does not apply.
	Dial func(addr string) (net.Conn, error)
	// Filters build the routes' filter chains, in chain order.
	Filters []FilterBuilder
}

// Gateway serves requests on one listener with the current Snapshot, and
// swaps in a new one on Apply. It is safe for concurrent use.
type Gateway struct {
	snap atomic.Pointer[Snapshot]
	srv  *fasthttp.Server
	log  *slog.Logger
	opts Options

	metrics *Metrics

	// mu serializes Apply and guards live and accessLog.
	mu sync.Mutex
	// live are the snapshots that may still serve requests: the current
	// one and those replaced but not yet drained.
	live      []*Snapshot
	accessLog *accesslog.Logger
	// logWritten and logDropped add up the counts of closed access logs.
	logWritten, logDropped uint64
	retiring               sync.WaitGroup

	serving  atomic.Bool
	draining atomic.Bool
	// stopped is closed by Shutdown: snapshots still retiring stop waiting
	// for their requests.
	stopped  chan struct{}
	stopOnce sync.Once
	redirect *fasthttp.Server
}

// New compiles cfg, which must have had SetDefaults and passed Validate, and
// returns a Gateway ready to Serve.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{log: opts.Logger, opts: opts, stopped: make(chan struct{})}
	g.metrics = newMetrics(g.inflight)
	g.metrics.set.RegisterMetricsWriter(func(w io.Writer) {
		written, dropped := g.accessLogCounts()
		metrics.WriteCounterUint64(w, metricAccessLogLines, written)
		metrics.WriteCounterUint64(w, metricAccessLogDropped, dropped)
	})
	snap, err := compile(cfg, &opts, nil, g.metrics)
	if err != nil {
		return nil, err
	}
	if err := g.attachAccessLog(snap, nil); err != nil {
		return nil, err
	}
	g.accessLog = snap.accessLog
	g.snap.Store(snap)
	snap.startHealth(g.log)
	g.live = []*Snapshot{snap}
	g.srv = g.newServer(&cfg.Server)
	return g, nil
}

func (g *Gateway) newServer(c *config.Server) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:            g.Handler,
		ErrorHandler:       g.errorHandler,
		Logger:             slogPrintf{g.log},
		ReadTimeout:        c.ReadTimeout.D(),
		WriteTimeout:       c.WriteTimeout.D(),
		IdleTimeout:        c.IdleTimeout.D(),
		MaxRequestBodySize: c.MaxRequestBody.Int(),
		ReadBufferSize:     c.MaxHeaderBytes.Int(),
		Concurrency:        c.Concurrency,
		MaxConnsPerIP:      c.MaxConnsPerIP,
		MaxRequestsPerConn: c.MaxRequestsPerConn,
		// Proxied responses keep exactly the upstream's headers.
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// Bodies go upstream as they came; the gateway never parses forms.
		DisablePreParseMultipartForm: true,
		SecureErrorLogMessage:        true,
		CloseOnShutdown:              true,
	}
}

// Snapshot returns the snapshot serving new requests.
func (g *Gateway) Snapshot() *Snapshot { return g.snap.Load() }

// Metrics returns the gateway's metrics.
func (g *Gateway) Metrics() *Metrics { return g.metrics }

// Listen opens the configured listen address (with SO_REUSEPORT when
// Options.ReusePort), terminating TLS when the config has certificates.
func (g *Gateway) Listen() (net.Listener, error) {
	cfg := g.snap.Load().cfg
	var ln net.Listener
	var err error
	if g.opts.ReusePort {
		ln, err = reuseport.Listen("tcp4", cfg.Listen)
	} else {
		ln, err = net.Listen("tcp", cfg.Listen)
	}
	if err != nil || !cfg.TLS.Enabled() {
		// Accepted connections stay *net.TCPConn: fasthttp writes a
		// response's header and body with one writev only on that type.
		return ln, err
	}
	return tls.NewListener(ln, g.tlsConfig()), nil
}

// Serve serves requests from ln until Shutdown.
func (g *Gateway) Serve(ln net.Listener) error {
	g.serving.Store(true)
	return g.srv.Serve(ln)
}

// ServeRedirect serves the HTTP-to-HTTPS redirect listener (tls.redirect_listen)
// from ln until Shutdown.
func (g *Gateway) ServeRedirect(ln net.Listener) error {
	g.mu.Lock()
	if g.redirect == nil {
		g.redirect = newRedirectServer(g.snap.Load().cfg.Listen, g.srv)
	}
	srv := g.redirect
	g.mu.Unlock()
	return srv.Serve(ln)
}

// Ready reports whether the gateway serves requests and is not draining:
// what /readyz answers.
func (g *Gateway) Ready() bool { return g.serving.Load() && !g.draining.Load() }

// Drain marks the gateway as draining: Ready turns false so load balancers
// in front stop sending new connections, while requests are still served.
// Shutdown drains too; call Drain first to give them time to notice.
func (g *Gateway) Drain() { g.draining.Store(true) }

// Shutdown drains: Ready turns false, the listener stops accepting,
// in-flight requests finish until ctx ends, idle keep-alive connections
// close; then upstream connections close and the access log is flushed.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.Drain()
	g.mu.Lock()
	redirect := g.redirect
	g.mu.Unlock()
	if redirect != nil {
		redirect.ShutdownWithContext(ctx)
	}
	err := g.srv.ShutdownWithContext(ctx)
	g.stopOnce.Do(func() { close(g.stopped) })
	g.retiring.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.live {
		s.stopHealth(nil)
		s.Close()
	}
	// After a drain timeout requests may still be running and logging;
	// the process is about to exit, so the log is only closed when none is.
	if g.accessLog != nil && err == nil {
		g.closeAccessLog(g.accessLog)
		g.accessLog = nil
	}
	return err
}

// Apply compiles cfg (SetDefaults and Validate done) and makes it serve new
// requests with one atomic swap. Requests in flight finish on the snapshot
// they started on; once it has drained, the replaced snapshot closes the
// connections of targets the new config dropped and the metric series of
// removed routes. On error nothing changes.
func (g *Gateway) Apply(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.snap.Load()
	next, err := compile(cfg, &g.opts, old, g.metrics)
	if err != nil {
		return err
	}
	if err := g.attachAccessLog(next, old); err != nil {
		return err
	}
	g.warnRestart(old.cfg, cfg)
	g.snap.Store(next)
	next.startHealth(g.log)
	g.accessLog = next.accessLog
	g.live = append(g.live, next)
	g.retiring.Add(1)
	go g.retire(old)
	return nil
}

// attachAccessLog gives next its access log: the current one when the
// destination is unchanged (reopened, for rotation), else a new one.
func (g *Gateway) attachAccessLog(next, old *Snapshot) error {
	c := &next.cfg.AccessLog
	if c.Path == config.AccessLogOff {
		return nil
	}
	if g.accessLog != nil && g.accessLog.Path() == c.Path && old != nil && old.cfg.AccessLog.Buffer == c.Buffer {
		g.accessLog.Reopen()
		next.accessLog = g.accessLog
		return nil
	}
	l, err := accesslog.Open(c.Path, c.Buffer, func(err error) {
		g.log.Error("access log write failed", "path", c.Path, "error", err)
	})
	if err != nil {
		return fmt.Errorf("access_log.path: %w", err)
	}
	next.accessLog = l
	return nil
}

// retire waits until old has no request in flight, then releases what the
// current snapshot does not use.
func (g *Gateway) retire(old *Snapshot) {
	defer g.retiring.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for old.inflight.Load() > 0 {
		select {
		case <-tick.C:
		case <-g.stopped:
			return
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	cur := g.snap.Load()
	old.closeTargets(cur)
	old.stopHealth(cur)
	old.closeFilters(cur)
	g.metrics.retain(cur)
	for i, s := range g.live {
		if s == old {
			g.live = append(g.live[:i], g.live[i+1:]...)
			break
		}
	}
	if l := old.accessLog; l != nil && !g.accessLogUsed(l) {
		g.closeAccessLog(l)
	}
}

// closeAccessLog flushes and closes l, keeping its counts.
func (g *Gateway) closeAccessLog(l *accesslog.Logger) {
	l.Close()
	g.logWritten += l.Written()
	g.logDropped += l.Dropped()
}

func (g *Gateway) accessLogUsed(l *accesslog.Logger) bool {
	for _, s := range g.live {
		if s.accessLog == l {
			return true
		}
	}
	return false
}

// warnRestart logs the changes a reload cannot apply to a running process.
func (g *Gateway) warnRestart(old, next *config.Config) {
	var keys []string
	if old.Listen != next.Listen {
		keys = append(keys, "listen")
	}
	if old.Admin.Listen != next.Admin.Listen {
		keys = append(keys, "admin.listen")
	}
	if old.TLS.Enabled() != next.TLS.Enabled() || old.TLS.MinVersion != next.TLS.MinVersion || old.TLS.RedirectListen != next.TLS.RedirectListen {
		keys = append(keys, "tls (on/off, min_version, redirect_listen; certificates do reload)")
	}
	o, n := old.Server, next.Server
	o.TrustedProxies, n.TrustedProxies = nil, nil
	o.DrainTimeout, n.DrainTimeout = 0, 0
	if !reflect.DeepEqual(o, n) {
		keys = append(keys, "server (except trusted_proxies and drain_timeout)")
	}
	if len(keys) > 0 {
		g.log.Warn("config reloaded, but these changes need a restart to take effect", "keys", strings.Join(keys, ", "))
	}
}

// inflight is the number of requests being served, for the gauge.
func (g *Gateway) inflight() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, s := range g.live {
		n += s.inflight.Load()
	}
	return float64(n)
}

// accessLogCounts returns the lines written and dropped by every access
// log of the gateway's life.
func (g *Gateway) accessLogCounts() (written, dropped uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	written, dropped = g.logWritten, g.logDropped
	seen := make(map[*accesslog.Logger]bool, 2)
	for _, s := range g.live {
		if l := s.accessLog; l != nil && !seen[l] {
			seen[l] = true
			written += l.Written()
			dropped += l.Dropped()
		}
	}
	return written, dropped
}

// Handler serves one request. It is the fasthttp.RequestHandler of the
// gateway's server, exported for tests that drive it in memory.
func (g *Gateway) Handler(ctx *fasthttp.RequestCtx) {
	s := g.snap.Load()
	s.inflight.Add(1)
	x := acquireExchange(ctx)
	defer g.finish(s, x)
	s.serve(ctx, x)
}

// finish reports the request to metrics and the access log, and releases
// x. A panic of the request path becomes a logged JSON 500 instead of a
// dropped connection.
func (g *Gateway) finish(s *Snapshot, x *exchange) {
	if p := recover(); p != nil {
		g.log.Error("panic serving request", "panic", fmt.Sprint(p),
			"request_id", string(x.requestID), "stack", string(debug.Stack()))
		writeError(&x.ctx.Response, errInternal, x.requestID)
		x.ctx.SetConnectionClose()
	}
	s.observe(x)
	releaseExchange(x)
	s.inflight.Add(-1)
}

// errorHandler answers requests fasthttp could not parse; they never reach
// a route or an upstream.
func (g *Gateway) errorHandler(ctx *fasthttp.RequestCtx, err error) {
	e := errBadRequest
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		e = errBodyTooLarge
	case isHeaderTooLarge(err):
		e = errHeaderTooLarge
	case isTimeout(err):
		e = errRequestTimeout
	}
	writeError(&ctx.Response, e, appendRandomID(nil))
	ctx.SetConnectionClose()
	g.snap.Load().unmatched.observe(methodBit(ctx.Method()), e.Status, time.Since(ctx.Time()).Seconds())
}

func isHeaderTooLarge(err error) bool {
	var small *fasthttp.ErrSmallBuffer
	return errors.As(err, &small)
}

var (
	errBodyTooLarge   = &Error{fasthttp.StatusRequestEntityTooLarge, errors.New("request body too large")}
	errHeaderTooLarge = &Error{fasthttp.StatusRequestHeaderFieldsTooLarge, errors.New("request header too large")}
	errRequestTimeout = &Error{fasthttp.StatusRequestTimeout, errors.New("request timed out")}
)

// slogPrintf adapts slog to fasthttp.Logger.
type slogPrintf struct{ l *slog.Logger }

func (s slogPrintf) Printf(format string, args ...any) {
	s.l.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// serve is the request path.
func (s *Snapshot) serve(ctx *fasthttp.RequestCtx, x *exchange) {
	x.setRequestID(&ctx.Request.Header)
	x.method = methodBit(ctx.Method())
	x.host = appendLowerHost(x.host[:0], ctx.Host())
	s.resolveClient(x, ctx)
	path := ctx.Path()
	if s.accessLog != nil && (s.sample >= 1 || rand.Float64() < s.sample) {
		x.logged = true
		x.path = append(x.path[:0], path...)
	}
	r := s.router.match(x, x.host, path)
	if r == nil {
		s.noRoute(ctx, x)
		return
	}
	x.route = r
	if len(r.filters) > 0 {
		x.req = Request{ClientIP: x.clientIP, RequestID: x.requestID, Route: r.name}
		ok, passed := r.runFilters(ctx, &x.req)
		x.filtersPassed = passed
		if !ok {
			return
		}
	}
	s.proxy(ctx, x, r, path)
}

func (s *Snapshot) noRoute(ctx *fasthttp.RequestCtx, x *exchange) {
	if x.allowed.any() {
		writeError(&ctx.Response, errNoRoute, x.requestID)
		return
	}
	writeError(&ctx.Response, errMethodNotAllowed, x.requestID)
	x.buf = x.allowed.appendAllow(x.buf[:0])
	ctx.Response.Header.SetBytesV(fasthttp.HeaderAllow, x.buf)
}

// proxy sends the request to a target of r's upstream and leaves the
// upstream's response, cleaned of hop-by-hop headers, in ctx.Response.
func (s *Snapshot) proxy(ctx *fasthttp.RequestCtx, x *exchange, r *route, path []byte) {
	req := &ctx.Request
	// The hash key is read before the rewrite: the client's path and query
	// identify it.
	key := r.upstream.hashKey(ctx, x, path)
	x.uri = r.appendRequestURI(x.uri[:0], x, path, ctx.URI().QueryString())
	closeDownstream := req.Header.ConnectionClose()
	x.buf = stripRequestHopByHop(&req.Header, x.buf)
	s.setForwarded(x, ctx)
	req.SetRequestURIBytes(x.uri)

	if err := s.exchangeWith(ctx, x, r, key); err != nil {
		writeError(&ctx.Response, err, x.requestID)
		if err == errBreakerOpen || err == errBreakerPending {
			ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		}
	} else {
		x.buf = stripResponseHopByHop(&ctx.Response.Header, x.buf)
		ctx.Response.Header.SetBytesV(strXRequestID, x.requestID)
	}
	if closeDownstream {
		ctx.SetConnectionClose()
	}
}

// exchangeWith exchanges the request with targets of r's upstream: within
// the circuit breaker, with the target the balancer picks for key, and
// again with a different target when the attempt failed in a way the
// upstream's retry policy retries (see retryPolicy.retryable), while
// attempts, the retry budget and the route's deadline allow, after a
// jittered backoff. The client gets the last attempt's response. Nothing
// reaches the client before exchangeWith returns, so a retry never follows
// response bytes.
//
// A request that failed on a stale keep-alive connection (closed by the
// upstream before it answered) is first sent once more to the same target
// on a new connection when idempotent, at once: the pool is at fault, not
// the target, so that resend counts neither as an attempt, against the
// budget, nor in passive health.
func (s *Snapshot) exchangeWith(ctx *fasthttp.RequestCtx, x *exchange, r *route, key uint64) *Error {
	up := r.upstream
	if !up.breaker.TryBegin() {
		up.metrics.breakerRequests.Inc()
		return errBreakerOpen
	}
	defer up.breaker.End()
	var pending *lb.Breaker
	if up.pending {
		pending = up.breaker
	}
	now := ctx.Time()
	deadline := now.Add(r.timeout)
	idempotent := isIdempotent(x.method)
	i := up.balancer.Pick(key, 0)
	if i < 0 {
		return errNoTarget
	}
	var skip uint64
	stale, retrying := false, false
	for try := 1; ; try++ {
		t := up.targets[i]
		x.target, x.upStart = t, now
		s.setUpstreamHost(&ctx.Request.Header, r, t)
		a := t.roundTrip(&ctx.Request, &ctx.Response, now, tryDeadline(now, deadline, up.perTry), pending)
		if a.err != nil && a.stale && idempotent && !stale {
			stale = true
			t.codes.inc(0, 0)
			// The other idle connections are likely stale too (an upstream
			// restart or idle timeout closes them together).
			t.hc.CloseIdleConnections()
			ctx.Response.Reset()
			now = time.Now()
			x.upStart = now
			a = t.roundTrip(&ctx.Request, &ctx.Response, now, tryDeadline(now, deadline, up.perTry), pending)
		}
		if retrying {
			up.budget.EndRetry()
			retrying = false
		}
		status := up.report(t, &a, &ctx.Response, now)
		if a.err == nil && !up.retry.statuses.has(status) {
			return nil // fast path: a response the policy keeps
		}
		if try >= up.retry.attempts || !up.retry.retryable(a.fail, status, idempotent, a.written) {
			return a.err
		}
		if i < 64 {
			skip |= 1 << uint(i)
		}
		j := up.balancer.Pick(key, skip)
		if j < 0 {
			return a.err
		}
		if !up.budget.TryRetry(up.breaker.Active()) {
			up.metrics.budgetExhausted.Inc()
			return a.err
		}
		// A target that refused the connection got nothing: trying another
		// one at once cannot overload it, and keeps retries (and the
		// budget they hold) short. Backoff is for failures after the
		// request went out.
		var wait time.Duration
		if a.fail != failConnect && a.fail != failPool {
			wait = up.retry.backoff(try - 1)
		}
		if now = backoffWithin(wait, deadline); now.IsZero() {
			up.budget.EndRetry()
			return a.err
		}
		retrying = true
		up.metrics.retries.Inc()
		ctx.Response.Reset()
		i = j
	}
}

// report counts one attempt in the target's metrics and passive health
// (and its latency, for p2c_ewma), and returns the response status, or 0
// when the attempt failed. now is when the attempt began.
func (up *upstream) report(t *target, a *attempt, resp *fasthttp.Response, now time.Time) int {
	status := 0
	if a.err == nil {
		status = resp.StatusCode()
	}
	t.codes.inc(0, status)
	if a.fail == failPool || a.fail == failLimit {
		return status // not the target's doing
	}
	t.lb.ReportResult(now.UnixNano(), up.failed(a.fail, status))
	if up.ewma && (a.err == nil || a.fail == failTimeout) {
		end := time.Now()
		t.lb.Observe(end.UnixNano(), end.Sub(now))
	}
	return status
}

// backoffWithin sleeps for d and returns the time after it; it returns the
// zero time at once when d would reach deadline.
func backoffWithin(d time.Duration, deadline time.Time) time.Time {
	now := time.Now()
	if !now.Add(d).Before(deadline) {
		return time.Time{}
	}
	if d <= 0 {
		return now
	}
	time.Sleep(d)
	return time.Now()
}

func (s *Snapshot) setUpstreamHost(h *fasthttp.RequestHeader, r *route, t *target) {
	switch r.rewrite.host {
	case hostTarget:
		h.SetHostBytes(t.host)
	case hostLiteral:
		h.SetHostBytes(r.rewrite.hostLiteral)
	}
}

// tryDeadline is the deadline of one attempt: the per-try timeout from now,
// within the overall deadline.
func tryDeadline(now, deadline time.Time, perTry time.Duration) time.Time {
	if perTry <= 0 {
		return deadline
	}
	if d := now.Add(perTry); d.Before(deadline) {
		return d
	}
	return deadline
}

// isIdempotent reports whether a method may be sent twice (RFC 9110 9.2.2).
func isIdempotent(bit uint16) bool {
	const idempotent = 1<<0 | 1<<1 | 1<<3 | 1<<5 | 1<<6 | 1<<8 // GET HEAD PUT DELETE OPTIONS TRACE
	return bit&idempotent != 0
}
