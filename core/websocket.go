package core

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// WebSocket proxying (RFC 6455 §4, through an HTTP/1.1 proxy): a route
// with websocket forwards an "Upgrade: websocket" request to a target the
// balancer picks, on a connection of its own (never a pooled one); once
// the target answers 101 the gateway sends the 101 on, takes the client's
// connection over (fasthttp's Hijack) and copies bytes both ways until
// either side closes or both are idle for idle_timeout. The pair lives
// outside the snapshots: a reload never drops it. Shutdown waits for the
// pairs up to its deadline, then closes them.

var (
	errWSRefused  = &Error{fasthttp.StatusBadGateway, errors.New("upstream refused the WebSocket upgrade")}
	errWSDraining = &Error{fasthttp.StatusServiceUnavailable, errors.New("the gateway is shutting down; open the WebSocket elsewhere")}
)

// wsBufSize is each direction's copy buffer: bounded memory per
// connection.
const wsBufSize = 16 << 10

var wsBufPool = sync.Pool{New: func() any { b := make([]byte, wsBufSize); return &b }}

// wsRegistry tracks a gateway's open WebSocket pairs, for the gauge and
// for Shutdown.
type wsRegistry struct {
	mu       sync.Mutex
	pairs    map[*wsPair]struct{}
	draining bool
	done     chan struct{} // closed when draining and the last pair ended
	open     atomic.Int64
	total    atomic.Uint64
}

func newWSRegistry() *wsRegistry {
	return &wsRegistry{pairs: make(map[*wsPair]struct{})}
}

type wsPair struct {
	client, upstream net.Conn
	closed           atomic.Bool
	closeOnce        sync.Once
}

// close ends both copy loops. The client's connection is fasthttp's after
// a hijack (its Close is a no-op until the hijack handler returns, then
// fasthttp closes it): a past deadline wakes its reader.
func (p *wsPair) close() {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		if p.client != nil {
			p.client.SetDeadline(time.Unix(1, 0)) //nolint:errcheck
		}
		p.upstream.Close() //nolint:errcheck
	})
}

// add registers p; false when the gateway is draining.
func (r *wsRegistry) add(p *wsPair) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining {
		return false
	}
	r.pairs[p] = struct{}{}
	r.open.Add(1)
	r.total.Add(1)
	return true
}

func (r *wsRegistry) remove(p *wsPair) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pairs[p]; !ok {
		return
	}
	delete(r.pairs, p)
	r.open.Add(-1)
	if r.draining && len(r.pairs) == 0 && r.done != nil {
		close(r.done)
		r.done = nil
	}
}

// shutdown refuses new pairs, waits for the open ones to end until ctx is
// done, then closes those left.
func (r *wsRegistry) shutdown(ctx context.Context) {
	r.mu.Lock()
	r.draining = true
	var done chan struct{}
	if len(r.pairs) > 0 {
		done = make(chan struct{})
		r.done = done
	}
	r.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	r.mu.Lock()
	left := make([]*wsPair, 0, len(r.pairs))
	for p := range r.pairs {
		left = append(left, p)
	}
	r.mu.Unlock()
	for _, p := range left {
		r.mu.Lock() // p.client is set under it by the hijack
		p.close()
		r.mu.Unlock()
	}
}

// wsPolicy is a route's compiled websocket setting.
type wsPolicy struct {
	idle time.Duration
	reg  *wsRegistry
}

// isWebSocketUpgrade reports whether the request asks for a WebSocket:
// Connection lists upgrade and Upgrade is websocket (RFC 6455 §4.1). It
// is read before admit removes both as hop-by-hop.
func isWebSocketUpgrade(h *fasthttp.RequestHeader) bool {
	if !h.IsGet() || !bytes.EqualFold(bytes.TrimSpace(h.Peek(fasthttp.HeaderUpgrade)), strWebSocket) {
		return false
	}
	for v := h.Peek(hdrConnection); len(v) > 0; {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte{','})
		if bytes.EqualFold(bytes.TrimSpace(tok), strUpgradeToken) {
			return true
		}
	}
	return false
}

var (
	strWebSocket    = []byte("websocket")
	strUpgradeToken = []byte("upgrade")
)

// serveWebSocket forwards the upgrade to a target and, on its 101, hands
// the client's connection to a copy loop.
func (p *proxy) serveWebSocket(ctx *fasthttp.RequestCtx, r *Request) {
	x := r.x
	ws := p.ws
	var up net.Conn
	var br *bufio.Reader
	var head fasthttp.ResponseHeader
	c := &x.call
	c.Start = ctx.Time()
	c.Deadline = c.Start.Add(p.timeout)
	c.Client = r
	req := p.wsRequest(ctx, x)
	err := p.up.Invoke(c, true, func(addr string, deadline time.Time) Outcome {
		conn, err := p.up.dialRaw(c.target, time.Until(deadline))
		if err != nil {
			if isTimeoutErr(err) {
				return Outcome{Timeout: true}
			}
			return Outcome{Unsent: true, Err: tlsGatewayError(err)}
		}
		conn.SetDeadline(deadline) //nolint:errcheck
		rd := bufio.NewReaderSize(conn, 4096)
		if _, err := conn.Write(p.wsHead(req, c)); err != nil {
			conn.Close()
			return Outcome{Failed: true}
		}
		head.Reset()
		if err := head.Read(rd); err != nil {
			conn.Close()
			if isTimeoutErr(err) {
				return Outcome{Timeout: true}
			}
			return Outcome{Failed: true}
		}
		if head.StatusCode() != fasthttp.StatusSwitchingProtocols {
			conn.Close()
			return Outcome{Status: head.StatusCode()}
		}
		conn.SetDeadline(time.Time{}) //nolint:errcheck
		up, br = conn, rd
		return Outcome{Status: fasthttp.StatusSwitchingProtocols}
	})
	if err != nil {
		WriteError(&ctx.Response, err, x.requestID)
		return
	}
	if up == nil {
		WriteError(&ctx.Response, errWSRefused, x.requestID)
		ctx.Response.Header.Set("X-Upstream-Status", itoa(head.StatusCode()))
		return
	}
	pair := &wsPair{upstream: up}
	if !ws.reg.add(pair) {
		up.Close()
		WriteError(&ctx.Response, errWSDraining, x.requestID)
		return
	}
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	for k, v := range head.All() {
		if bytes.EqualFold(k, []byte(fasthttp.HeaderContentLength)) || bytes.EqualFold(k, []byte(hdrConnection)) {
			continue
		}
		resp.Header.AddBytesKV(k, v)
	}
	resp.Header.Set(hdrConnection, "Upgrade")
	resp.Header.SetBytesV(strXRequestID, x.requestID)
	resp.SkipBody = true
	idle := ws.idle
	ctx.Hijack(func(client net.Conn) {
		ws.reg.mu.Lock()
		pair.client = client
		closed := pair.closed.Load()
		ws.reg.mu.Unlock()
		defer ws.reg.remove(pair)
		defer pair.close()
		if closed {
			return // shut down before the hijack
		}
		wsPipe(client, up, br, idle, pair)
	})
}

// wsRequest prepares the client's request for the target: the route's
// rewrite, X-Forwarded-* and X-Request-ID, as the proxy sends any request.
func (p *proxy) wsRequest(ctx *fasthttp.RequestCtx, x *exchange) *fasthttp.Request {
	x.uri = p.rewrite.appendRequestURI(x.uri[:0], x, ctx.URI().QueryString())
	setForwarded(x, ctx)
	return &ctx.Request
}

// wsHead is the upgrade request's head for c's target.
func (p *proxy) wsHead(req *fasthttp.Request, c *Call) []byte {
	x := c.Client.x
	b := make([]byte, 0, 1024)
	b = append(b, "GET "...)
	b = append(b, x.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	switch {
	case p.rewrite.host == hostPreserve:
		b = append(b, req.Header.Host()...)
	case p.rewrite.host == hostLiteral:
		b = append(b, p.rewrite.hostLiteral...)
	default:
		b = append(b, c.target.host...)
	}
	b = append(b, "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"...)
	for k, v := range req.Header.All() {
		if bytes.EqualFold(k, []byte(fasthttp.HeaderHost)) {
			continue
		}
		b = append(b, k...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// wsPipe copies both ways until either side ends or both are idle for
// idle; br holds what the target sent after its 101.
func wsPipe(client, up net.Conn, br *bufio.Reader, idle time.Duration, pair *wsPair) {
	var last atomic.Int64 // unix nanos of the last byte either way
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var src io.Reader = up
		if br.Buffered() > 0 {
			src = io.MultiReader(io.LimitReader(br, int64(br.Buffered())), up)
		}
		wsCopy(client, src, up, idle, &last, pair)
		pair.close()
	}()
	wsCopy(up, client, client, idle, &last, pair)
	pair.close()
	<-done
}

// wsCopy copies src to dst; deadline is the connection src reads from,
// whose read deadline is pushed out while either direction has traffic.
func wsCopy(dst io.Writer, src io.Reader, deadline net.Conn, idle time.Duration, last *atomic.Int64, pair *wsPair) {
	bp := wsBufPool.Get().(*[]byte)
	defer wsBufPool.Put(bp)
	buf := *bp
	for {
		deadline.SetReadDeadline(time.Unix(0, last.Load()).Add(idle)) //nolint:errcheck
		// After the deadline is set: close() marks closed before it sets
		// its past deadline, so either this sees it or the read does.
		if pair.closed.Load() {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !pair.closed.Load() && isTimeoutErr(err) && time.Since(time.Unix(0, last.Load())) < idle {
				continue // the other direction had traffic: not idle
			}
			return
		}
	}
}

// dialRaw opens a connection of its own to t: Options.Dial's (tests) or
// TCP's, with TLS for an https target.
func (up *Upstream) dialRaw(t *target, timeout time.Duration) (net.Conn, error) {
	if t.tls != nil {
		return t.tls.dial(up.dial, timeout)
	}
	if up.dial != nil {
		return up.dial(t.addr)
	}
	return net.DialTimeout("tcp", t.addr, timeout)
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for n >= 10 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	b[i] = byte('0' + n)
	return string(b[i:])
}
