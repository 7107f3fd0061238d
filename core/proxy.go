package core

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

// proxy is the terminal of a route with an upstream: it rewrites the
// client's request in place (path, Host, hop-by-hop headers,
// X-Forwarded-*), sends it with Upstream.Do and leaves the upstream's
// response, cleaned of hop-by-hop headers, in ctx.Response.
type proxy struct {
	up      *Upstream
	rewrite rewrite
	// timeout bounds the upstream call: the route's timeout or the
	// upstream's timeouts.request.
	timeout time.Duration
	// ws, when the route has websocket, forwards WebSocket upgrades.
	ws *wsPolicy
	// grpc: the route passes gRPC through (protocol: grpc).
	grpc bool
}

var _ Terminal = (*proxy)(nil)

// proxyBuilder builds the proxy of every route with an upstream. It is
// core's own terminal, tried after those in Options.Terminals.
type proxyBuilder struct{}

var _ TerminalBuilder = proxyBuilder{}

func (proxyBuilder) Key(_ *config.Config, rc *config.Route) any {
	if rc.Upstream == "" {
		return nil
	}
	return rc.Upstream
}

func (proxyBuilder) Validate(e *Env) error {
	if e.s.upstreams[e.Route.Upstream] == nil {
		return fmt.Errorf("upstream: unknown upstream %q", e.Route.Upstream)
	}
	if _, err := compileRewrite(&e.Route.Rewrite, e.r.params); err != nil {
		return fmt.Errorf("rewrite.path: %w", err)
	}
	return nil
}

func (proxyBuilder) Build(e *Env) (Terminal, error) {
	p := &proxy{up: e.Upstream(e.Route.Upstream)}
	var err error
	if p.rewrite, err = compileRewrite(&e.Route.Rewrite, e.r.params); err != nil {
		return nil, fmt.Errorf("rewrite.path: %w", err)
	}
	p.timeout = p.up.request
	if d := time.Duration(e.Route.Timeout); d > 0 {
		p.timeout = d
	}
	p.grpc = e.Route.Protocol == config.ProtocolGRPC
	if w := e.Route.WebSocket; w != nil && e.is != nil && e.is.ws != nil {
		p.ws = &wsPolicy{idle: w.IdleTimeout.D(), reg: e.is.ws}
	}
	return p, nil
}

// Serve implements Terminal.
func (p *proxy) Serve(ctx *fasthttp.RequestCtx, r *Request) {
	x := r.x
	if x.wsUpgrade && p.ws != nil {
		p.serveWebSocket(ctx, r)
		return
	}
	if p.grpc {
		if s := h2StreamOf(ctx); s != nil {
			p.serveGRPC(ctx, r, s)
		} else {
			WriteError(&ctx.Response, errGRPCNeedsHTTP2, x.requestID)
		}
		return
	}
	req := &ctx.Request
	// The hash key is read before the rewrite: the client's path and query
	// identify it.
	c := &x.call
	c.Key = p.up.hashKey(ctx, x, x.path)
	x.uri = p.rewrite.appendRequestURI(x.uri[:0], x, ctx.URI().QueryString())
	setForwarded(x, ctx)
	req.SetRequestURIBytes(x.uri)

	c.Start = ctx.Time()
	c.Deadline = c.Start.Add(p.timeout)
	c.Client = r
	switch p.rewrite.host {
	case hostPreserve:
		c.KeepHost = true
	case hostLiteral:
		c.Host = p.rewrite.hostLiteral
	}
	if err := p.up.Do(req, &ctx.Response, c); err != nil {
		WriteError(&ctx.Response, err, x.requestID)
		if err == errBreakerOpen || err == errBreakerPending {
			ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		}
	} else {
		x.buf = stripResponseHopByHop(&ctx.Response.Header, x.buf)
		ctx.Response.Header.SetBytesV(strXRequestID, x.requestID)
	}
}
