package core

import "time"

// Outcome is what one attempt of an Invoke call came to, as the protocol
// client saw it.
type Outcome struct {
	// Status is the HTTP status equivalent of the answer (a gRPC code
	// mapped: UNAVAILABLE is 503, DEADLINE_EXCEEDED 504, ...), 0 when no
	// answer came. It decides retries (retries.on statuses) and passive
	// health (health.passive.on_status) as a response status does for Do.
	Status int
	// Unsent: the attempt failed before anything reached the target (no
	// connection could be had). It is retried on another target without
	// taking an attempt or the retry budget, when retries.on has
	// connect_error.
	Unsent bool
	// Timeout: the attempt ran out of time (retries.on timeout).
	Timeout bool
	// Failed: the attempt failed without an answer (a reset, a protocol
	// error); Status is 0.
	Failed bool
	// Err, when set on a failed attempt, is the gateway's error for it in
	// place of the one its kind implies: a failed TLS handshake says so.
	Err *Error
}

// Invoke makes one call of another protocol than HTTP/1.1 (a gRPC
// terminal's unary call) to the upstream, with what Do gives an HTTP
// request: the circuit breaker, the balancer's pick (c.Key), the target's
// in-flight count, retries within attempts, budget and deadline, passive
// health and the target's metrics. attempt is called for each attempt with
// the picked target's address ("host:port") and the attempt's deadline; it
// makes the call on its own connections (one per address, kept by the
// caller) and reports the Outcome. Retried are unsent attempts and, when
// idempotent, the statuses and failures retries.on lists.
//
// Invoke returns nil when the last attempt answered (its Status may be an
// error status the caller maps), or the gateway's error: no target, the
// breaker, a connection failure (502), a timeout (504). It does not
// allocate; attempt may.
func (up *Upstream) Invoke(c *Call, idempotent bool, attempt func(addr string, deadline time.Time) Outcome) *Error {
	if !up.begin(c) {
		return errBreakerOpen
	}
	defer up.breaker.End()
	now, deadline := c.Start, c.deadline()
	i := up.balancer.Pick(c.Key, 0)
	if i < 0 {
		return errNoTarget
	}
	var skip uint64
	sent, retrying := 0, false
	for try := 1; ; try++ {
		t := up.targets[i]
		c.target, c.attemptStart, c.attempts = t, now, try
		t.lb.Begin()
		o := attempt(t.addr, tryDeadline(now, deadline, up.perTry))
		t.lb.End()
		if retrying {
			up.budget.EndRetry()
			retrying = false
		}
		f := o.failure()
		t.codes.inc(0, o.Status)
		t.lb.ReportResult(now.UnixNano(), up.failed(f, o.Status))
		if f == failNone && !up.retry.statuses.has(o.Status) {
			return nil
		}
		if !o.Unsent {
			sent++
		}
		err := o.error()
		if sent >= up.retry.attempts || try > len(up.targets)+up.retry.attempts ||
			!up.retry.retryable(f, o.Status, idempotent, !o.Unsent) {
			return err
		}
		if i < 64 {
			skip |= 1 << uint(i)
		}
		j := up.balancer.Pick(c.Key, skip)
		if j < 0 {
			return err
		}
		var wait time.Duration
		if !o.Unsent {
			if !up.budget.TryRetry(up.breaker.Active()) {
				up.metrics.budgetExhausted.Inc()
				return err
			}
			retrying = true
			wait = up.retry.backoff(sent - 1)
		}
		if now = backoffWithin(wait, deadline); now.IsZero() {
			if retrying {
				up.budget.EndRetry()
			}
			return err
		}
		up.metrics.retries.Inc()
		i = j
	}
}

func (o *Outcome) failure() failure {
	switch {
	case o.Unsent:
		return failConnect
	case o.Timeout:
		return failTimeout
	case o.Failed:
		return failReset
	}
	return failNone
}

// error is the gateway's error for an attempt that got no answer; nil for
// one that did (its status is the caller's to map).
func (o *Outcome) error() *Error {
	if o.Err != nil && o.failure() != failNone {
		return o.Err
	}
	switch {
	case o.Unsent:
		return errUpstreamConnect
	case o.Timeout:
		return errUpstreamTimeout
	case o.Failed:
		return errUpstreamReset
	}
	return nil
}
