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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/reuseport"

	"fastgate/core/config"
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
}

// Gateway serves requests on one listener with the current Snapshot. It is
// safe for concurrent use.
type Gateway struct {
	snap atomic.Pointer[Snapshot]
	srv  *fasthttp.Server
	log  *slog.Logger
	opts Options
}

// New compiles cfg, which must have had SetDefaults and passed Validate, and
// returns a Gateway ready to Serve.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	snap, err := Compile(cfg, &opts)
	if err != nil {
		return nil, err
	}
	g := &Gateway{log: opts.Logger, opts: opts}
	g.snap.Store(snap)
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

// Listen opens the configured listen address (with SO_REUSEPORT when
// Options.ReusePort).
func (g *Gateway) Listen() (net.Listener, error) {
	addr := g.snap.Load().cfg.Listen
	if g.opts.ReusePort {
		return reuseport.Listen("tcp4", addr)
	}
	return net.Listen("tcp", addr)
}

// Serve serves requests from ln until Shutdown.
func (g *Gateway) Serve(ln net.Listener) error { return g.srv.Serve(ln) }

// Shutdown stops accepting connections, waits for in-flight requests until
// ctx ends, then closes idle upstream connections.
func (g *Gateway) Shutdown(ctx context.Context) error {
	err := g.srv.ShutdownWithContext(ctx)
	g.snap.Load().Close()
	return err
}

// Handler serves one request. It is the fasthttp.RequestHandler of the
// gateway's server, exported for tests that drive it in memory.
func (g *Gateway) Handler(ctx *fasthttp.RequestCtx) {
	x := acquireExchange(ctx)
	defer g.finish(x)
	g.snap.Load().serve(ctx, x)
}

// finish releases x and turns a panic of the request path into a logged
// JSON 500 instead of a dropped connection.
func (g *Gateway) finish(x *exchange) {
	if p := recover(); p != nil {
		g.log.Error("panic serving request", "panic", fmt.Sprint(p),
			"request_id", string(x.requestID), "stack", string(debug.Stack()))
		writeError(&x.ctx.Response, errInternal, x.requestID)
		x.ctx.SetConnectionClose()
	}
	releaseExchange(x)
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
	path := ctx.Path()
	r := s.router.match(x, x.host, path)
	if r == nil {
		s.noRoute(ctx, x)
		return
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
	x.uri = r.appendRequestURI(x.uri[:0], x, path, ctx.URI().QueryString())
	closeDownstream := req.Header.ConnectionClose()
	x.buf = stripRequestHopByHop(&req.Header, x.buf)
	s.setForwarded(x, ctx)
	req.SetRequestURIBytes(x.uri)

	if err := s.exchangeWith(ctx, x, r); err != nil {
		writeError(&ctx.Response, err, x.requestID)
	} else {
		x.buf = stripResponseHopByHop(&ctx.Response.Header, x.buf)
		ctx.Response.Header.SetBytesV(strXRequestID, x.requestID)
	}
	if closeDownstream {
		ctx.SetConnectionClose()
	}
}

// exchangeWith picks a target and exchanges the request with it. A request
// that failed on a stale keep-alive connection (closed by the upstream before
// it answered) is sent once more on a fresh connection when idempotent.
func (s *Snapshot) exchangeWith(ctx *fasthttp.RequestCtx, x *exchange, r *route) *Error {
	up := r.upstream
	now := ctx.Time()
	deadline := now.Add(r.timeout)
	t := up.targets[up.balancer.Pick(0)]
	s.setUpstreamHost(&ctx.Request.Header, r, t)
	retryable, err := t.roundTrip(&ctx.Request, &ctx.Response, now, tryDeadline(now, deadline, up.perTry))
	if err != nil && retryable && isIdempotent(x.method) {
		// The other idle connections are likely stale too (an upstream
		// restart or idle timeout closes them together).
		t.hc.CloseIdleConnections()
		ctx.Response.Reset()
		now = time.Now()
		_, err = t.roundTrip(&ctx.Request, &ctx.Response, now, tryDeadline(now, deadline, up.perTry))
	}
	return err
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
