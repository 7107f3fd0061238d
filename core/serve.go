package core

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/valyala/fasthttp"
)

// Handler serves one request. It is the fasthttp.RequestHandler of the
// gateway's server, exported for tests that drive it in memory.
func (g *Gateway) Handler(ctx *fasthttp.RequestCtx) {
	s := g.snap.Load()
	s.inflight.Add(1)
	x := acquireExchange(ctx, s)
	defer x.finish()
	s.serve(ctx, x)
}

// finish ends the handler's part of a request: a panic of the request path
// becomes a logged JSON 500 instead of a dropped connection, then the
// After phase runs. The request completes now, or when its streamed body
// has been written.
func (x *exchange) finish() {
	if p := recover(); p != nil {
		x.snap.logPanic(p, x)
		WriteError(&x.ctx.Response, errInternal, x.requestID)
		x.ctx.SetConnectionClose()
	}
	x.runAfter()
	if x.closeDownstream {
		x.ctx.SetConnectionClose()
	}
	holdResponse(x.ctx)
	if x.streamed && x.ctx.Response.IsBodyStream() {
		x.deferred = true // completed by the stream's close
		return
	}
	x.complete()
}

// complete ends a request: the Done phase, metrics, the access log; then x
// is released.
func (x *exchange) complete() {
	s := x.snap
	unwatch(x)
	x.runDone()
	if !x.background {
		s.observe(x)
	}
	releaseExchange(x)
	s.inflight.Add(-1)
}

// streamClosed is called by a streamed body of x's response when fasthttp
// has written it (err nil) or failed to.
func (x *exchange) streamClosed(err error) {
	x.streamed = false
	if x.bodyErr == nil {
		x.bodyErr = err
	}
	if x.deferred {
		x.complete()
	}
}

func (s *Snapshot) logPanic(p any, x *exchange) {
	s.log.Error("panic serving request", "panic", fmt.Sprint(p),
		"request_id", string(x.requestID), "stack", string(debug.Stack()))
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
	WriteError(&ctx.Response, e, appendRandomID(nil))
	ctx.SetConnectionClose()
	s := g.snap.Load()
	s.decorateUnrouted(ctx)
	s.unmatched.observe(methodBit(ctx.Method()), e.Status, time.Since(ctx.Time()).Seconds())
}

func isHeaderTooLarge(err error) bool {
	var small *fasthttp.ErrSmallBuffer
	return errors.As(err, &small)
}

// slogPrintf adapts slog to fasthttp.Logger.
type slogPrintf struct{ l *slog.Logger }

func (s slogPrintf) Printf(format string, args ...any) {
	s.l.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// serve is the request path: match, filters, terminal.
func (s *Snapshot) serve(ctx *fasthttp.RequestCtx, x *exchange) {
	x.method = methodBit(ctx.Method())
	x.host = appendLowerHost(x.host[:0], ctx.Host())
	x.path = append(x.path[:0], ctx.Path()...)
	if s.accessLog != nil && (s.sample >= 1 || rand.Float64() < s.sample) {
		x.logged = true
	}
	s.resolveClient(x, ctx) // before admit deletes any header
	if !s.admit(ctx, x) {
		s.decorateUnrouted(ctx)
		return
	}
	if len(x.xff) > 0 && len(ctx.Request.Header.Peek(hdrXForwardedFor)) == 0 {
		// admit removed it (the strip list, or Connection named it): the
		// chain is not believed.
		x.xff, x.clientIP = x.xff[:0], x.peer
	}
	x.setRequestID(&ctx.Request.Header)
	if isServerOptions(ctx, x) {
		answerServerOptions(ctx, x)
		s.decorateUnrouted(ctx)
		return
	}
	r := s.router.match(x, x.host, x.path)
	if r == nil {
		s.noRoute(ctx, x)
		return
	}
	x.route = r
	x.req.ClientIP, x.req.RequestID, x.req.Route = x.clientIP, x.requestID, r.name
	if len(r.filters) > 0 {
		if cap(x.state) < len(r.filters) {
			x.state = make([]any, len(r.filters))
		}
		x.state = x.state[:len(r.filters)]
		if !x.runFilters(ctx, r) {
			return
		}
	}
	x.slot = 0
	r.terminal.Serve(ctx, &x.req)
}

func (s *Snapshot) noRoute(ctx *fasthttp.RequestCtx, x *exchange) {
	defer s.decorateUnrouted(ctx)
	if x.allowed.any() {
		WriteError(&ctx.Response, errNoRoute, x.requestID)
		return
	}
	WriteError(&ctx.Response, errMethodNotAllowed, x.requestID)
	x.buf = x.allowed.appendAllow(x.buf[:0])
	ctx.Response.Header.SetBytesV(fasthttp.HeaderAllow, x.buf)
}
