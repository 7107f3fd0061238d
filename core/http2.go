package core

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// HTTP/2 downstream (server.http2 on TLS listeners, by ALPN; server.h2c on
// plain ones, by the client's connection preface, RFC 9113 §3.3). Such a
// connection is served by golang.org/x/net/http2, and each stream becomes a
// fasthttp.RequestCtx that goes through Gateway.Handler: the same
// snapshot, routes, filters and terminals as HTTP/1.1. The HTTP/1.1 path
// is untouched: with http2 only on TLS, other connections go to fasthttp
// as they are; with h2c, the first bytes of every plain connection are
// read to tell the protocols apart, so HTTP/1.1 connections lose
// fasthttp's writev path and the client watchdog (documented). The h2
// path allocates per request (net/http's request, the copied headers).

// http2Preface is what an HTTP/2 client sends first (RFC 9113 §3.4).
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// h2Listener hands HTTP/1.x connections to fasthttp (Accept) and serves
// HTTP/2 ones itself.
type h2Listener struct {
	net.Listener
	g     *Gateway
	tls   bool // TLS listener: ALPN decides; else the preface does
	srv   *http2.Server
	base  *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	err   error
}

// wrapHTTP2 returns ln, or a listener that serves HTTP/2 on it when the
// config asks for it.
func (g *Gateway) wrapHTTP2(ln net.Listener) net.Listener {
	c := g.snap.Load().cfg
	isTLS := c.TLS.Enabled()
	if isTLS && !c.Server.HTTP2 || !isTLS && !c.Server.H2C {
		return ln
	}
	l := &h2Listener{Listener: ln, g: g, tls: isTLS, srv: &http2.Server{},
		base: &http.Server{}, conns: make(chan net.Conn), done: make(chan struct{})}
	if c.Server.IdleTimeout > 0 {
		l.srv.IdleTimeout = c.Server.IdleTimeout.D()
	}
	http2.ConfigureServer(l.base, l.srv) //nolint:errcheck // a fresh server
	g.mu.Lock()
	g.h2 = append(g.h2, l)
	g.mu.Unlock()
	go l.acceptLoop()
	return l
}

func (l *h2Listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.once.Do(func() { l.err = err; close(l.done) })
			return
		}
		go l.classify(c)
	}
}

// Accept returns the next HTTP/1.x connection.
func (l *h2Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close stops accepting.
func (l *h2Listener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { l.err = net.ErrClosed; close(l.done) })
	return err
}

// classify serves c as HTTP/2 or hands it to fasthttp.
func (l *h2Listener) classify(c net.Conn) {
	timeout := l.g.snap.Load().cfg.Server.ReadTimeout.D()
	c.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck
	var h2 bool
	var state *tls.ConnectionState
	if tc, ok := tlsConnOf(c); ok && l.tls {
		if err := tc.Handshake(); err != nil {
			c.Close()
			return
		}
		st := tc.ConnectionState()
		h2, state = st.NegotiatedProtocol == http2.NextProtoTLS, &st
	} else if !l.tls {
		br := bufio.NewReaderSize(c, 4096)
		h2 = isPreface(br)
		c = &peekedConn{Conn: c, r: br}
	}
	c.SetReadDeadline(time.Time{}) //nolint:errcheck
	if !h2 {
		select {
		case l.conns <- c:
		case <-l.done:
			c.Close()
		}
		return
	}
	l.srv.ServeConn(c, &http2.ServeConnOpts{BaseConfig: l.base, Handler: &h2Handler{g: l.g, tls: state, local: c.LocalAddr()}})
}

// isPreface reports whether br starts with the HTTP/2 preface; it reads
// no more than it must to tell (an HTTP/1.x method other than PRI differs
// in its first three bytes).
func isPreface(br *bufio.Reader) bool {
	b, err := br.Peek(3)
	if err != nil || string(b) != http2Preface[:3] {
		return false
	}
	b, err = br.Peek(len(http2Preface))
	return err == nil && string(b) == http2Preface
}

// peekedConn reads what classify peeked first.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// shutdownHTTP2 sends GOAWAY on the HTTP/2 connections, which finish their
// streams.
func (g *Gateway) shutdownHTTP2(ctx context.Context) {
	g.mu.Lock()
	ls := g.h2
	g.mu.Unlock()
	for _, l := range ls {
		l.base.Shutdown(ctx) //nolint:errcheck // h2 conns are not the base's: it returns at once
	}
}

// h2Handler serves one HTTP/2 stream through Gateway.Handler.
type h2Handler struct {
	g     *Gateway
	tls   *tls.ConnectionState // nil for h2c
	local net.Addr
}

// h2Conn stands for the HTTP/2 connection in a RequestCtx: addresses, and
// the TLS state so that ctx.IsTLS is true on TLS (X-Forwarded-Proto,
// HSTS). It is never read or written.
type h2Conn struct {
	net.Conn
	local, remote net.Addr
	state         *tls.ConnectionState
}

func (c *h2Conn) LocalAddr() net.Addr                  { return c.local }
func (c *h2Conn) RemoteAddr() net.Addr                 { return c.remote }
func (c *h2Conn) Handshake() error                     { return nil }
func (c *h2Conn) ConnectionState() tls.ConnectionState { return *c.state }

type h2ConnPlain struct {
	net.Conn
	local, remote net.Addr
}

func (c *h2ConnPlain) LocalAddr() net.Addr  { return c.local }
func (c *h2ConnPlain) RemoteAddr() net.Addr { return c.remote }

var errH2BodyTooLarge = errors.New("request body too large")

func (h *h2Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cfg := h.g.snap.Load().cfg
	remote, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
	var conn net.Conn = &h2ConnPlain{local: h.local, remote: remote}
	if h.tls != nil {
		conn = &h2Conn{local: h.local, remote: remote, state: h.tls}
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init2(conn, nil, false)
	req := &ctx.Request
	req.Header.SetMethod(r.Method)
	req.SetRequestURI(r.URL.RequestURI())
	req.Header.SetHost(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	var stream *h2Stream
	if isGRPC(r) {
		// A route with protocol: grpc streams it; any other answers from
		// the (empty) request body.
		stream = &h2Stream{w: w, r: r}
		ctx.SetUserValue(h2StreamKey, stream)
	} else if r.Body != nil && r.Body != http.NoBody {
		max := cfg.Server.MaxRequestBody.Int()
		body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
		if err != nil || len(body) > max {
			status := http.StatusBadRequest
			if err == nil {
				status, err = http.StatusRequestEntityTooLarge, errH2BodyTooLarge
			}
			http.Error(w, `{"error":"`+err.Error()+`","status":`+strconv.Itoa(status)+`}`, status)
			return
		}
		req.SetBody(body)
	}
	h.g.Handler(ctx)
	if stream != nil && stream.handled {
		return
	}
	resp := &ctx.Response
	hdr := w.Header()
	for k, v := range resp.Header.All() {
		if isHopHeader(k) || string(k) == fasthttp.HeaderContentLength && resp.IsBodyStream() {
			continue
		}
		hdr.Add(string(k), string(v))
	}
	w.WriteHeader(resp.StatusCode())
	if resp.IsBodyStream() {
		io.Copy(w, resp.BodyStream()) //nolint:errcheck // the client went away: the stream reports it
		resp.CloseBodyStream()        //nolint:errcheck
		return
	}
	if r.Method != http.MethodHead {
		w.Write(resp.Body()) //nolint:errcheck
	}
}
