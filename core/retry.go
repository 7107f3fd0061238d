package core

import (
	"time"

	"fastgate/core/config"
	"fastgate/lb"
)

// failure classifies how one attempt failed, for the retry conditions
// (retries.on) and passive health.
type failure uint8

const (
	failNone     failure = iota // a response header arrived
	failConnect                 // no connection (refused, connect timeout); nothing was written
	failPool                    // the target's pool is full; nothing was written, not the target's fault
	failReset                   // the connection closed before a whole response header
	failTimeout                 // the per-try (or overall) deadline passed
	failProtocol                // an invalid or too large response
	failLimit                   // the circuit breaker refused; not the target's fault
)

// statusSet is a set of status codes 400-599.
type statusSet [4]uint64

func (s *statusSet) add(code int) {
	if code >= 400 && code < 600 {
		s[(code-400)>>6] |= 1 << uint((code-400)&63)
	}
}

func (s *statusSet) has(code int) bool {
	return code >= 400 && code < 600 && s[(code-400)>>6]&(1<<uint((code-400)&63)) != 0
}

// retryPolicy is a compiled config.Retries.
type retryPolicy struct {
	attempts                   int
	onConnect, onReset, onTime bool
	statuses                   statusSet
	backoffBase, backoffMax    time.Duration
}

func compileRetries(r *config.Retries) retryPolicy {
	p := retryPolicy{
		attempts:    max(r.Attempts, 1),
		backoffBase: r.Backoff.Base.D(),
		backoffMax:  r.Backoff.Max.D(),
	}
	for _, on := range r.On {
		switch on {
		case config.RetryConnectError:
			p.onConnect = true
		case config.RetryReset:
			p.onReset = true
		case config.RetryTimeout:
			p.onTime = true
		}
	}
	for _, n := range r.Statuses() {
		p.statuses.add(n)
	}
	return p
}

// retryable reports whether an attempt that ended with f (and status, when
// a response arrived) may be sent again. A request whose bytes may have
// reached the upstream (written) is retried only when its method is
// idempotent: a POST that timed out may have been processed.
func (p *retryPolicy) retryable(f failure, status int, idempotent, written bool) bool {
	if written && !idempotent {
		return false
	}
	switch f {
	case failNone:
		return p.statuses.has(status)
	case failConnect, failPool:
		return p.onConnect
	case failReset:
		return p.onReset
	case failTimeout:
		return p.onTime
	}
	return false
}

// backoff returns the jittered wait before retry number n (0: the first).
func (p *retryPolicy) backoff(n int) time.Duration {
	return lb.Backoff(n, p.backoffBase, p.backoffMax)
}

// failed reports whether an attempt counts as a failure of its target for
// passive outlier detection: every failure but a full pool, and the
// configured statuses.
func (up *Upstream) failed(f failure, status int) bool {
	if f == failNone {
		return up.failStatus.has(status)
	}
	return f != failPool && f != failLimit
}
