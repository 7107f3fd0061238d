package core

import (
	"bytes"
	"errors"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
	"fastgate/core/hdr"
	"fastgate/core/http1"
)

// The gateway's edge checks of every client request, before routing:
// strict HTTP/1.1 framing (core/http1), methods it never forwards, and the
// headers no client may send upstream. A request refused here gets its
// error and the connection is closed, so nothing the client sent after it
// on the connection is read as a request.

// Errors of the edge checks.
var (
	errHTTPVersion      = &Error{fasthttp.StatusBadRequest, errors.New("malformed request: the HTTP version must be HTTP/1.0 or HTTP/1.1")}
	errHTTPVersionMajor = &Error{fasthttp.StatusHTTPVersionNotSupported, errors.New("HTTP version not supported: send HTTP/1.1 (or HTTP/1.0)")}
	errConnect          = &Error{fasthttp.StatusNotImplemented, errors.New("CONNECT is not supported: the gateway does not open tunnels")}
	errTrace            = &Error{fasthttp.StatusMethodNotAllowed, errors.New("TRACE is not allowed: it would echo credentials back")}
	errAbsoluteHost     = &Error{fasthttp.StatusBadRequest, errors.New("malformed request: the request target's host differs from the Host header")}
	errUnderscoreHeader = &Error{fasthttp.StatusBadRequest, errors.New("malformed request: header names with '_' are refused (server.underscore_headers: reject)")}
	// errMalformedFraming maps each http1.ErrRequest error to its 400.
	errMalformedFraming = make(map[error]*Error)
	// strAllowAll lists the methods the gateway forwards: the Allow of
	// OPTIONS * and of a refused TRACE.
	strAllowAll = []byte("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
)

func init() {
	for _, err := range []error{
		http1.ErrRequestBareLF, http1.ErrRequestHeaderLine, http1.ErrRequestObsFold,
		http1.ErrRequestBadByte, http1.ErrRequestDuplicateContentLength,
		http1.ErrRequestBadContentLength, http1.ErrRequestContentLengthWithChunked,
		http1.ErrRequestBadTransferEncoding, http1.ErrRequestTransferEncodingHTTP10,
		http1.ErrRequestIncompleteFields,
	} {
		// "http1: request has ..." -> "malformed request: has ..."
		msg := bytes.TrimPrefix([]byte(err.Error()), []byte("http1: request "))
		msg = bytes.TrimPrefix(msg, []byte("http1: "))
		errMalformedFraming[err] = &Error{fasthttp.StatusBadRequest, errors.New("malformed request: " + string(msg))}
	}
}

// Underscore policies (server.underscore_headers).
const (
	underscoreDrop = iota
	underscoreReject
	underscoreAllow
)

// edge is a snapshot's compiled edge policy.
type edge struct {
	// strip are the lower-cased names (or prefixes) removed from every
	// request: server.strip_request_headers.
	strip      []stripName
	underscore int
}

type stripName struct {
	lower  string
	prefix bool
}

// compileEdge compiles the server's edge policy; the consumer headers of
// every route's auth join the strip list, so that no client on any route
// can send what auth asserts on another.
func compileEdge(cfg *config.Config) edge {
	c := &cfg.Server
	e := edge{}
	switch c.UnderscoreHeaders {
	case config.UnderscoreHeadersReject:
		e.underscore = underscoreReject
	case config.UnderscoreHeadersAllow:
		e.underscore = underscoreAllow
	}
	names := append([]string(nil), c.StripRequestHeaders...)
	for _, r := range cfg.Routes {
		if r != nil && r.Auth != nil {
			names = append(names, r.Auth.ConsumerHeader, r.Auth.GroupsHeader)
		}
	}
	for _, n := range names {
		sn := stripName{lower: string(bytes.ToLower([]byte(n)))}
		if len(sn.lower) > 0 && sn.lower[len(sn.lower)-1] == '*' {
			sn.lower, sn.prefix = sn.lower[:len(sn.lower)-1], true
		}
		if sn.lower != "" && !e.covers(sn) {
			e.strip = append(e.strip, sn)
		}
	}
	return e
}

// covers reports whether the strip list already removes every name sn
// does.
func (e *edge) covers(sn stripName) bool {
	for _, s := range e.strip {
		if s == sn || s.prefix && len(sn.lower) >= len(s.lower) && sn.lower[:len(s.lower)] == s.lower {
			return true
		}
	}
	return false
}

// strips reports whether the request header name is one the gateway
// removes.
func (e *edge) strips(name []byte) bool {
	for i := range e.strip {
		s := &e.strip[i]
		if s.prefix {
			if len(name) >= len(s.lower) && equalFoldLower(name[:len(s.lower)], s.lower) {
				return true
			}
		} else if len(name) == len(s.lower) && equalFoldLower(name, s.lower) {
			return true
		}
	}
	return false
}

// equalFoldLower reports whether b equals lower (already lower-case),
// ignoring ASCII case.
func equalFoldLower(b []byte, lower string) bool {
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// admit runs the edge checks on the request: it answers (and returns
// false) a request the gateway refuses or answers itself, and otherwise
// removes the headers no client may send: hop-by-hop ones and those
// Connection names (before the gateway sets its own, so that no client
// can make it drop X-Request-ID), the strip list and, by policy, names
// with '_'.
func (s *Snapshot) admit(ctx *fasthttp.RequestCtx, x *exchange) bool {
	h := &ctx.Request.Header
	if e := s.checkRequestLine(ctx, x); e != nil {
		x.refuse(ctx, e)
		return false
	}
	x.dels = x.dels[:0]
	raw := h.RawHeaders()
	underscore := false
	err := http1.CheckRequestFields(raw, !h.IsHTTP11(), func(name []byte) {
		if bytes.IndexByte(name, '_') >= 0 {
			underscore = true
			if s.edge.underscore == underscoreDrop {
				x.dels = append(x.dels, name)
			}
			return
		}
		if s.edge.strips(name) {
			x.dels = append(x.dels, name)
		}
	})
	if err != nil {
		e := errMalformedFraming[err]
		if e == nil {
			e = errBadRequest
		}
		x.refuse(ctx, e)
		return false
	}
	if underscore && s.edge.underscore == underscoreReject {
		x.refuse(ctx, errUnderscoreHeader)
		return false
	}
	for _, name := range x.dels {
		hdr.DelRequestBytes(h, name)
	}
	x.closeDownstream = h.ConnectionClose()
	x.wsUpgrade = isWebSocketUpgrade(h)
	x.buf = stripRequestHopByHop(h, x.buf)
	return true
}

// checkRequestLine refuses versions other than HTTP/1.0 and HTTP/1.1,
// CONNECT and TRACE, an absolute-form target whose host is not the Host
// header, and answers OPTIONS * itself.
func (s *Snapshot) checkRequestLine(ctx *fasthttp.RequestCtx, x *exchange) *Error {
	h := &ctx.Request.Header
	if p := h.Protocol(); string(p) != "HTTP/1.1" && string(p) != "HTTP/1.0" {
		if len(p) == len("HTTP/1.1") && string(p[:5]) == "HTTP/" && p[5] != '1' && p[6] == '.' {
			return errHTTPVersionMajor
		}
		return errHTTPVersion
	}
	switch x.method {
	case methodConnect:
		return errConnect
	case methodTrace:
		return errTrace
	}
	uri := h.RequestURI()
	if len(uri) == 0 || uri[0] == '/' {
		return nil
	}
	if x.method == methodOptions && string(uri) == "*" {
		return nil // answered by serve: answerServerOptions
	}
	// absolute-form (RFC 9112 §3.2.2): its authority must be the Host
	// header, when there is one (HTTP/1.0 may omit it).
	if host := h.Host(); len(host) > 0 && !bytes.EqualFold(ctx.URI().Host(), host) {
		return errAbsoluteHost
	}
	return nil
}

// refuse answers e and closes the connection: after a malformed request
// nothing more on it is trusted to be framed as the client meant.
// A refused TRACE is well-formed, so its connection stays open.
func (x *exchange) refuse(ctx *fasthttp.RequestCtx, e *Error) {
	x.requestID = appendRandomID(x.requestID[:0])
	WriteError(&ctx.Response, e, x.requestID)
	if e == errTrace {
		ctx.Response.Header.SetBytesV(fasthttp.HeaderAllow, strAllowAll)
		return
	}
	ctx.SetConnectionClose()
}

// isServerOptions reports whether the request is "OPTIONS *", which asks
// about the server itself: the gateway answers it.
func isServerOptions(ctx *fasthttp.RequestCtx, x *exchange) bool {
	if x.method != methodOptions {
		return false
	}
	uri := ctx.Request.Header.RequestURI()
	return len(uri) == 1 && uri[0] == '*'
}

// answerServerOptions answers "OPTIONS *": 200, the methods the gateway
// forwards in Allow, no body.
func answerServerOptions(ctx *fasthttp.RequestCtx, x *exchange) {
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetBytesV(fasthttp.HeaderAllow, strAllowAll)
	ctx.Response.Header.SetBytesV(strXRequestID, x.requestID)
}
