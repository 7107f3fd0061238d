package core

import (
	"io"
	"math/rand/v2"
	"net/netip"
	"sync"

	"github.com/valyala/fasthttp"
)

// exchange is the per-request state of one request through the gateway: the
// matched route, its parameters, the filter context and scratch buffers. It
// is pooled; every field is reset by reset, and nothing outlives the
// request. Its life ends when the response has been written: at the
// handler's return, or when a streamed body's stream closes.
type exchange struct {
	ctx     *fasthttp.RequestCtx
	snap    *Snapshot
	method  uint16 // methodBit of the request method
	allowed methodSet

	params  [maxParams]span
	nparams int

	// requestID is the well-formed X-Request-ID, kept or generated.
	requestID   []byte
	peer        netip.Addr
	trustedPeer bool
	clientIP    netip.Addr
	// xff is a trusted peer's X-Forwarded-For lines joined, as they came
	// (resolveClient); empty from any other peer.
	xff []byte

	route *route // nil: no route matched
	// call is the proxy terminal's upstream call: its target and start
	// are reported to metrics and the access log.
	call Call
	// logged: the request is sampled into the access log.
	logged bool
	// path is the client's normalized path, before any rewrite; params
	// are spans of it.
	path []byte

	// req is the filter context; passed counts the filters that let the
	// request through, whose After and Done run at the end; slot is the
	// running filter's index, state the filters' slots. first is the
	// first filter that runs: 0, or for a Background request the one after
	// the filter that made it.
	req      Request
	first    int
	passed   int
	slot     int
	state    []any
	consumer *Consumer
	logExtra []byte // extra access-log fields, JSON, each with its leading comma

	// A streamed response: streamed means ctx.Response's body is a stream
	// of core's, which completes the request when it closes if deferred
	// (the handler has returned); tee receives the body; bodyErr is why
	// the body was not completely written; bytesOut counts streamed bytes.
	streamed bool
	deferred bool
	tee      io.Writer
	bodyErr  error
	bytesOut int64

	cancel cancelState

	// background: a request of Background.Serve, not a client's: not in
	// the route's request metrics nor the access log.
	background bool
	// closeDownstream: the client asked to close the connection (its
	// Connection header, removed as hop-by-hop by admit).
	closeDownstream bool
	// wsUpgrade: the request asks for a WebSocket (read before its
	// Upgrade and Connection headers are removed).
	wsUpgrade bool
	// dels are the request header names admit removes; slices of the
	// request's raw headers.
	dels [][]byte

	host []byte // lower-cased host without port
	uri  []byte // upstream request URI
	buf  []byte // scratch for header values
}

var exchangePool = sync.Pool{New: func() any {
	x := &exchange{}
	x.req.x = x
	return x
}}

func acquireExchange(ctx *fasthttp.RequestCtx, s *Snapshot) *exchange {
	x := exchangePool.Get().(*exchange)
	x.ctx, x.snap = ctx, s
	return x
}

func releaseExchange(x *exchange) {
	x.reset()
	exchangePool.Put(x)
}

func (x *exchange) reset() {
	x.ctx, x.snap = nil, nil
	x.method = 0
	x.closeDownstream = false
	x.wsUpgrade = false
	x.background = false
	x.first = 0
	clear(x.dels)
	x.dels = x.dels[:0]
	x.allowed = methodSet{}
	x.nparams = 0
	x.requestID = x.requestID[:0]
	x.peer = netip.Addr{}
	x.trustedPeer = false
	x.xff = x.xff[:0]
	x.clientIP = netip.Addr{}
	x.route = nil
	x.call = Call{}
	x.logged = false
	x.path = x.path[:0]
	x.req = Request{x: x}
	x.passed, x.slot = 0, 0
	clear(x.state)
	x.state = x.state[:0]
	x.consumer = nil
	x.logExtra = x.logExtra[:0]
	x.streamed, x.deferred, x.tee, x.bodyErr, x.bytesOut = false, false, nil, nil, 0
	x.cancel.reset()
	x.host = x.host[:0]
	x.uri = x.uri[:0]
	x.buf = x.buf[:0]
}

// param returns the value of the i-th parameter, a slice of x.path.
func (x *exchange) param(i int) []byte {
	if i < 0 || i >= x.nparams {
		return nil
	}
	s := x.params[i]
	return x.path[s.start:s.end]
}

// setRequestID keeps a well-formed incoming X-Request-ID or generates one,
// and sets it on the request going upstream.
func (x *exchange) setRequestID(req *fasthttp.RequestHeader) {
	ids := req.PeekAll(strXRequestID)
	if len(ids) > 0 && validRequestID(ids[0]) {
		x.requestID = append(x.requestID[:0], ids[0]...)
		if len(ids) == 1 {
			return
		}
	} else {
		x.requestID = appendRandomID(x.requestID[:0])
	}
	// One id goes upstream: the kept one, not the client's others.
	replaceHeader(req, strXRequestID, len(ids), x.requestID)
}

// validRequestID accepts 1-128 bytes of letters, digits and -._:+/= — enough
// for UUIDs, W3C trace ids and base64 ids, and safe to echo in JSON and logs.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == ':' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// appendRandomID appends 32 random hex digits (128 bits, the shape of a W3C
// trace id) without allocating.
func appendRandomID(dst []byte) []byte {
	for _, v := range [2]uint64{rand.Uint64(), rand.Uint64()} {
		for i := 60; i >= 0; i -= 4 {
			dst = append(dst, hexDigits[(v>>uint(i))&0xf])
		}
	}
	return dst
}

// appendLowerHost appends host lower-cased, without its port.
func appendLowerHost(dst, host []byte) []byte {
	end := len(host)
	if len(host) > 0 && host[0] == '[' {
		for i, c := range host {
			if c == ']' {
				end = i + 1
				break
			}
		}
	} else {
		for i := len(host) - 1; i >= 0; i-- {
			if host[i] == ':' {
				end = i
				break
			}
		}
	}
	for _, c := range host[:end] {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// pathSafe marks the bytes that may appear unescaped in a path: RFC 3986
// unreserved, sub-delims, ':', '@' and '/'.
var pathSafe = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=:@/" {
		t[c] = true
	}
	return t
}()

// AppendQuotedPath appends the decoded path p percent-encoded for a request
// line or a Location: what is not RFC 3986 unreserved, a sub-delim, ':',
// '@' or '/' becomes %XX.
func AppendQuotedPath(dst, p []byte) []byte {
	for _, c := range p {
		if pathSafe[c] {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&0xf])
	}
	return dst
}

// appendQuotedQuery appends v percent-encoded for a query value.
func appendQuotedQuery(dst, v []byte) []byte {
	for _, c := range v {
		if pathSafe[c] && c != '&' && c != '=' && c != '+' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hexUpper[c>>4], hexUpper[c&0xf])
	}
	return dst
}

const hexUpper = "0123456789ABCDEF"
