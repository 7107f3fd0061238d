package core

import (
	"bytes"
	"errors"
	"fastgate/core/hdr"
	"io"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// Background serves requests the gateway makes itself through the rest of
// a route: the filters after the one that asked for it and the route's
// terminal, off any client connection. A cache refreshing a stale entry
// (stale-while-revalidate) is the user: the client got the stale copy, and
// the refresh must go through the same request transforms, balancing,
// retries, health and breaker as a client's request would.
//
// A Background follows reloads: it serves on the gateway's current
// snapshot, in the route of the same name, after the same filter instance
// (which a reload keeps while its config is unchanged). It is safe for
// concurrent use.
type Background struct {
	is    *instances
	route string
	inst  *instance
}

// Errors of Background.Serve.
var (
	// ErrNoGateway: the filter was built outside a serving gateway
	// (fastgate -check, core.Compile).
	ErrNoGateway = errors.New("core: background request outside a serving gateway")
	// ErrRouteChanged: the current config has no such route, or the
	// route no longer has the filter that made the Background.
	ErrRouteChanged = errors.New("core: background request's route or filter changed with a reload")
	// ErrBodyTooLarge: the response body was longer than Serve's limit.
	ErrBodyTooLarge = errors.New("core: background response body over the limit")
)

// Background returns the Background of the filter being built. Call it in
// Build.
func (e *Env) Background() *Background {
	return &Background{is: e.is, route: e.Route.Name, inst: e.inst}
}

// Serve sends req through the route's filters after the filter that made
// b, then its terminal, with the consumer c and client IP ip of the
// request it stands for, and leaves the response in resp, its body read
// whole (an error past maxBody bytes). It blocks until the response is
// complete; the route's timeouts bound it. The request gets its own
// X-Request-ID, is counted in upstream metrics but not in the route's
// request metrics, and is not access-logged. req is not modified.
func (b *Background) Serve(req *fasthttp.Request, resp *fasthttp.Response, c *Consumer, ip netip.Addr, maxBody int) error {
	if b.is == nil || b.is.current == nil {
		return ErrNoGateway
	}
	s := b.is.current.Load()
	if s == nil {
		return ErrNoGateway
	}
	s.inflight.Add(1)
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(req, nil, nil)
	hdr.DelRequest(&ctx.Request.Header, strXRequestID)
	x := acquireExchange(ctx, s)
	x.background = true
	err := s.serveBackground(ctx, x, b, c, ip)
	x.runAfter()
	if err == nil && ctx.Response.IsBodyStream() {
		var body []byte
		if body, err = readBody(ctx.Response.BodyStream(), maxBody); err == nil {
			ctx.Response.SetBody(body) // closes the stream: the exchange sees its end
			ctx.Response.Header.SetContentLength(len(body))
		}
	}
	ctx.Response.CloseBodyStream() //nolint:errcheck // a body that failed is reported as err
	x.complete()
	if err == nil && len(ctx.Response.Body()) > maxBody {
		err = ErrBodyTooLarge
	}
	if err == nil {
		ctx.Response.CopyTo(resp)
	}
	return err
}

// serveBackground runs the route of b on x from the filter after b's.
func (s *Snapshot) serveBackground(ctx *fasthttp.RequestCtx, x *exchange, b *Background, c *Consumer, ip netip.Addr) error {
	r := s.byName[b.route]
	if r == nil {
		return ErrRouteChanged
	}
	pos := -1
	for i, f := range r.filters {
		if any(f) == b.inst.value {
			pos = i
		}
	}
	if pos < 0 {
		return ErrRouteChanged
	}
	x.method = methodBit(ctx.Method())
	x.host = appendLowerHost(x.host[:0], ctx.Host())
	x.path = append(x.path[:0], ctx.Path()...)
	x.setRequestID(&ctx.Request.Header)
	x.peer, x.clientIP = ip, ip
	if m := s.router.match(x, x.host, x.path); m != r {
		return ErrRouteChanged
	}
	x.route = r
	x.consumer = c
	x.req.ClientIP, x.req.RequestID, x.req.Route = x.clientIP, x.requestID, r.name
	if cap(x.state) < len(r.filters) {
		x.state = make([]any, len(r.filters))
	}
	x.state = x.state[:len(r.filters)]
	x.first, x.passed = pos+1, pos+1
	if !x.runFilters(ctx, r) {
		return nil // a filter answered; that is the response
	}
	x.slot = 0
	r.terminal.Serve(ctx, &x.req)
	return nil
}

// readBody reads r whole, at most max bytes.
func readBody(r io.Reader, max int) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if n > int64(max) {
		return nil, ErrBodyTooLarge
	}
	return buf.Bytes(), nil
}
