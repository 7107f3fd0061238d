package core

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// gRPC passthrough (route protocol: grpc): a gRPC call that reached the
// gateway over HTTP/2 goes, after the route's filters, to a target the
// balancer picks over HTTP/2 (h2c, or TLS with ALPN h2 to an https
// target), its request and response bodies
// streamed and its trailers (grpc-status, grpc-message) passed back. The
// h2 handler leaves the stream to the terminal (h2Stream) instead of
// buffering it.

var errGRPCNeedsHTTP2 = &Error{fasthttp.StatusUnsupportedMediaType, errors.New("this route passes gRPC through: call it with a gRPC client over HTTP/2 (server.http2 or server.h2c)")}

// h2Stream is an HTTP/2 request the gateway passes through as it is.
type h2Stream struct {
	w       http.ResponseWriter
	r       *http.Request
	handled bool // the terminal wrote the response to w
}

// h2StreamKey is the RequestCtx user value holding the *h2Stream.
const h2StreamKey = "fastgate.h2stream"

func h2StreamOf(ctx *fasthttp.RequestCtx) *h2Stream {
	s, _ := ctx.UserValue(h2StreamKey).(*h2Stream)
	return s
}

// isGRPC reports whether r is a gRPC call (RFC-less but universal:
// content-type application/grpc, +proto and such).
func isGRPC(r *http.Request) bool {
	return r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// h2cTransport is the HTTP/2 client of gRPC passthrough: cleartext, one
// connection per target shared by every call.
var h2cTransport = &http2.Transport{
	AllowHTTP: true,
	DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	},
}

// serveGRPC passes the call through to a target.
func (p *proxy) serveGRPC(ctx *fasthttp.RequestCtx, r *Request, s *h2Stream) {
	x := r.x
	c := &x.call
	c.Start = ctx.Time()
	c.Deadline = c.Start.Add(p.timeout)
	uri := string(p.rewrite.appendRequestURI(x.uri[:0], x, ctx.URI().QueryString()))
	var resp *http.Response
	err := p.up.Invoke(c, false, func(addr string, deadline time.Time) Outcome {
		cctx, cancel := context.WithDeadline(s.r.Context(), deadline)
		tr, scheme := h2cTransport, "http://"
		if tt := c.target.tls; tt != nil {
			tr, scheme = tt.h2t, "https://"
		}
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, scheme+addr+uri, s.r.Body)
		if err != nil {
			cancel()
			return Outcome{Failed: true}
		}
		for k, vs := range s.r.Header {
			if isHopHeader([]byte(k)) {
				continue
			}
			req.Header[k] = vs
		}
		req.Header.Set("Te", "trailers")
		req.Header.Set(strXRequestID, string(x.requestID))
		req.Host = s.r.Host
		if p.rewrite.host != hostPreserve {
			req.Host = addr
		}
		rsp, err := tr.RoundTrip(req)
		if err != nil {
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				return Outcome{Timeout: true}
			}
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				return Outcome{Unsent: true}
			}
			if c.target.tls.handshakeFailed(err) {
				return Outcome{Unsent: true, Err: UpstreamTLSError(err)}
			}
			return Outcome{Failed: true}
		}
		rsp.Body = cancelOnClose{rsp.Body, cancel}
		resp = rsp
		return Outcome{Status: rsp.StatusCode}
	})
	if err != nil {
		WriteError(&ctx.Response, err, x.requestID)
		return
	}
	defer resp.Body.Close()
	s.handled = true
	h := s.w.Header()
	for k, vs := range resp.Header {
		if !isHopHeader([]byte(k)) {
			h[k] = vs
		}
	}
	h.Set(strXRequestID, string(x.requestID))
	s.w.WriteHeader(resp.StatusCode)
	flushCopy(s.w, resp.Body)
	for k, vs := range resp.Trailer {
		for _, v := range vs {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
	ctx.SetStatusCode(resp.StatusCode) // for the metrics and the access log
}

// flushCopy copies body to w, flushing after every read so streamed
// messages go out as they come.
func flushCopy(w http.ResponseWriter, body io.Reader) {
	f, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if f != nil {
				f.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
