package core

import (
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core/http1"
	"fastgate/lb"
)

// Call is one call of an upstream through Upstream.Do: what the caller
// sets, and what Do reports back. A Call is used by one goroutine and may
// live on the caller's stack; the zero value with a Deadline is a plain
// call.
type Call struct {
	// Key is the balancing key of hashing balancers (consistent_hash);
	// other balancers ignore it.
	Key uint64
	// Start is when the call begins, the caller's one clock reading
	// (ctx.Time() for a client request). Zero: time.Now().
	Start time.Time
	// Deadline bounds the whole call, retries and backoff included. Zero:
	// Start plus the upstream's timeouts.request.
	Deadline time.Time
	// Host is the Host header sent upstream: nil sends the picked target's
	// host:port, unless KeepHost keeps the request's own.
	Host     []byte
	KeepHost bool
	// Client, when set, is the client request the call serves: when its
	// client goes away the call stops at once (its connection is closed,
	// not pooled), is not retried, and Do returns a 499 error. A streamed
	// body into the client's own ctx.Response completes the request when
	// the stream closes.
	Client *Request

	up           *Upstream
	target       *target
	attemptStart time.Time
	attempts     int
}

// Target returns the address of the target of the last attempt, "" before
// any.
func (c *Call) Target() string {
	if c.target == nil {
		return ""
	}
	return c.target.addr
}

// Attempts returns the number of attempts Do made.
func (c *Call) Attempts() int { return c.attempts }

// Observe records the call's upstream latency, from the last attempt's
// start to end, in fastgate_upstream_duration_seconds. Do leaves it to the
// caller, so that a request reads the clock once at its end.
func (c *Call) Observe(end time.Time) {
	if c.target != nil {
		c.up.metrics.duration.Update(end.Sub(c.attemptStart).Seconds())
	}
}

// Name returns the upstream's name.
func (up *Upstream) Name() string { return up.name }

// Do sends req to a target of the upstream and leaves the response in
// resp: within the circuit breaker, to the target the balancer picks for
// c.Key, and again to another target when the attempt failed in a way the
// retry policy retries (retries.on), while attempts, the retry budget and
// c.Deadline allow, after a jittered backoff. An attempt that got no
// connection (refused, connect timeout, full pool) sent nothing: it is
// retried at once on a target not tried yet, whatever the method, and
// counts neither as an attempt nor against the budget. Every attempt is counted in
// the target's metrics and passive health. It returns nil when resp holds
// the upstream's response (any status), else the error to answer with.
//
// Nothing reaches the client before Do returns, so a retry never follows
// response bytes. A body larger than the upstream's max_buffered_body (or
// chunked) is left in resp as a stream; reading it (resp.Body or
// resp.BodyStream) reads the upstream connection.
//
// A request that failed on a stale keep-alive connection (closed by the
// upstream before it answered) is sent once more to the same target on a
// new connection when idempotent, at once and outside the retry budget
// (the pool is at fault, not the target), but as one of the attempts. A
// response with Retry-After (429, 503) that asks to wait past the deadline
// is returned, not retried.
//
// Do allocates nothing. It is safe for concurrent use; req, resp and c
// belong to the caller's goroutine.
func (up *Upstream) Do(req *fasthttp.Request, resp *fasthttp.Response, c *Call) *Error {
	if !up.begin(c) {
		return errBreakerOpen
	}
	defer up.breaker.End()
	now, deadline := c.Start, c.deadline()
	var pending *lb.Breaker
	if up.pending {
		pending = up.breaker
	}
	var x *exchange
	if c.Client != nil {
		x = c.Client.x
	}
	if x != nil && x.snap.watch != nil {
		x.snap.watch.watch(x, now)
	}
	i := up.balancer.Pick(c.Key, 0)
	if i < 0 {
		return errNoTarget
	}
	var skip uint64
	stale, retrying := false, false
	sent := 0 // attempts whose request may have reached a target
	for try := 1; ; try++ {
		t := up.targets[i]
		c.target, c.attemptStart, c.attempts = t, now, try
		up.setHost(&req.Header, c, t)
		a := t.roundTrip(req, resp, now, tryDeadline(now, deadline, up.perTry), pending, x)
		if retrying {
			up.budget.EndRetry()
			retrying = false
		}
		if x.clientCanceled() {
			t.codes.inc(0, 0)
			return errClientGone
		}
		status := up.report(t, &a, resp, now)
		if a.err == nil && !up.retry.statuses.has(status) {
			return nil // fast path: a response the policy keeps
		}
		idempotent := isIdempotent(methodBit(req.Header.Method()))
		// Nothing was sent when no connection was had: another target
		// cannot be harmed by the request, nor can this one be overloaded
		// by the retry, so it takes neither an attempt nor the budget
		// (Envoy's budget is against retry storms on busy targets). Every
		// target is tried at most once, within the deadline.
		unsent := a.fail == failConnect || a.fail == failPool
		if !unsent {
			sent++
		}
		if sent >= up.retry.attempts || try > len(up.targets)+up.retry.attempts {
			return a.err
		}
		if a.err != nil && a.stale && idempotent && !stale {
			stale = true
			// The other idle connections are likely stale too (an upstream
			// restart or idle timeout closes them together).
			t.hc.CloseIdleConnections()
			resp.Reset()
			now = time.Now()
			continue
		}
		if !up.retry.retryable(a.fail, status, idempotent, a.written) {
			return a.err
		}
		if a.err == nil && retryAfterPastDeadline(resp, deadline) {
			return nil // the upstream's own answer: come back later
		}
		if i < 64 {
			skip |= 1 << uint(i)
		}
		j := up.balancer.Pick(c.Key, skip)
		if j < 0 {
			return a.err
		}
		if !unsent {
			if !up.budget.TryRetry(up.breaker.Active()) {
				up.metrics.budgetExhausted.Inc()
				return a.err
			}
			retrying = true
		}
		// A target that refused the connection got nothing: trying another
		// one at once cannot overload it, and keeps retries (and the
		// budget they hold) short. Backoff is for failures after the
		// request went out.
		var wait time.Duration
		if !unsent {
			wait = up.retry.backoff(sent - 1)
		}
		if now = backoffWithin(wait, deadline); now.IsZero() || x.clientCanceled() {
			if retrying {
				up.budget.EndRetry()
			}
			if x.clientCanceled() {
				return errClientGone
			}
			return a.err
		}
		up.metrics.retries.Inc()
		resp.Reset()
		i = j
	}
}

// begin opens c on the upstream: c's start (now, when unset), and a slot
// of the circuit breaker, which the caller ends; false when it is open.
func (up *Upstream) begin(c *Call) bool {
	c.up = up
	if !up.breaker.TryBegin() {
		up.metrics.breakerRequests.Inc()
		return false
	}
	if c.Start.IsZero() {
		c.Start = time.Now()
	}
	return true
}

// deadline is the call's deadline: its own, or the upstream's request
// timeout from its start.
func (c *Call) deadline() time.Time {
	if c.Deadline.IsZero() {
		return c.Start.Add(c.up.request)
	}
	return c.Deadline
}

// retryAfterPastDeadline reports whether resp has a Retry-After that asks
// to wait beyond deadline: retrying sooner, even on another target, would
// defy it.
func retryAfterPastDeadline(resp *fasthttp.Response, deadline time.Time) bool {
	v := resp.Header.Peek(fasthttp.HeaderRetryAfter)
	if len(v) == 0 {
		return false
	}
	now := time.Now()
	d, ok := http1.ParseRetryAfter(v, now)
	return ok && !now.Add(d).Before(deadline)
}

// setHost sets the Host header of an attempt to t.
func (up *Upstream) setHost(h *fasthttp.RequestHeader, c *Call, t *target) {
	switch {
	case c.KeepHost:
	case c.Host != nil:
		h.SetHostBytes(c.Host)
	default:
		h.SetHostBytes(t.host)
	}
}

// report counts one attempt in the target's metrics and passive health
// (and its latency, for p2c_ewma), and returns the response status, or 0
// when the attempt failed. now is when the attempt began.
func (up *Upstream) report(t *target, a *attempt, resp *fasthttp.Response, now time.Time) int {
	status := 0
	if a.err == nil {
		status = resp.StatusCode()
	}
	t.codes.inc(0, status)
	if a.fail == failPool || a.fail == failLimit || a.stale {
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
