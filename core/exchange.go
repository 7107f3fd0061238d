package core

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// exchange is the per-request state of one request through the gateway: the
// matched route, its parameters and scratch buffers. It is pooled; every
// field is reset by reset, and nothing outlives the request.
type exchange struct {
	ctx     *fasthttp.RequestCtx
	method  uint16 // methodBit of the request method
	allowed methodSet

	params  [maxParams]span
	nparams int

	// requestID is the well-formed X-Request-ID, kept or generated.
	requestID   []byte
	peer        netip.Addr
	trustedPeer bool
	clientIP    netip.Addr

	route  *route  // nil: no route matched
	target *target // the target of the last attempt; nil: none
	// upStart is when the last upstream attempt began.
	upStart time.Time
	// logged: the request is sampled into the access log; path then keeps
	// the client's path, before any rewrite.
	logged bool
	path   []byte
	// req is what filters see of the request; filtersPassed counts the
	// filters that let it through, whose After runs at the end.
	req           Request
	filtersPassed int

	host []byte // lower-cased host without port
	uri  []byte // upstream request URI
	buf  []byte // scratch for header values
}

var exchangePool = sync.Pool{New: func() any { return &exchange{} }}

func acquireExchange(ctx *fasthttp.RequestCtx) *exchange {
	x := exchangePool.Get().(*exchange)
	x.ctx = ctx
	return x
}

func releaseExchange(x *exchange) {
	x.reset()
	exchangePool.Put(x)
}

func (x *exchange) reset() {
	x.ctx = nil
	x.method = 0
	x.allowed = methodSet{}
	x.nparams = 0
	x.requestID = x.requestID[:0]
	x.peer = netip.Addr{}
	x.trustedPeer = false
	x.clientIP = netip.Addr{}
	x.route = nil
	x.target = nil
	x.upStart = time.Time{}
	x.logged = false
	x.path = x.path[:0]
	x.req = Request{}
	x.filtersPassed = 0
	x.host = x.host[:0]
	x.uri = x.uri[:0]
	x.buf = x.buf[:0]
}

// param returns the value of the i-th parameter, a slice of path.
func (x *exchange) param(path []byte, i int) []byte {
	if i >= x.nparams {
		return nil
	}
	s := x.params[i]
	return path[s.start:s.end]
}

// setRequestID keeps a well-formed incoming X-Request-ID or generates one,
// and sets it on the request going upstream.
func (x *exchange) setRequestID(req *fasthttp.RequestHeader) {
	if id := req.Peek(strXRequestID); validRequestID(id) {
		x.requestID = append(x.requestID[:0], id...)
		return
	}
	x.requestID = appendRandomID(x.requestID[:0])
	req.SetBytesV(strXRequestID, x.requestID)
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

// appendQuotedPath appends the decoded path p percent-encoded for a request
// line.
func appendQuotedPath(dst, p []byte) []byte {
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
