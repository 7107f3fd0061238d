package core

import (
	"bytes"
	"fastgate/core/hdr"
	"net/netip"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Header names the gateway sets or removes.
const (
	hdrXForwardedFor   = "X-Forwarded-For"
	hdrXForwardedProto = "X-Forwarded-Proto"
	hdrXForwardedHost  = "X-Forwarded-Host"
	hdrXRealIP         = "X-Real-Ip"
	hdrForwarded       = "Forwarded"
	hdrConnection      = "Connection"
)

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 and the
// non-standard ones proxies still meet; they are never forwarded, in either
// direction. Headers named by Connection are removed too.
var hopHeaders = [...]string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	// Expect is answered by the gateway's server (100 Continue) before the
	// body is read; the upstream gets the whole body at once.
	"Expect",
}

// isHopHeader reports whether the normalized header name k is hop-by-hop.
func isHopHeader(k []byte) bool { return hopIndex(k) >= 0 }

// hopIndex returns the index in hopHeaders of the normalized header name k,
// or -1 when it is not hop-by-hop.
func hopIndex(k []byte) int {
	for i, h := range hopHeaders {
		if len(k) == len(h) && string(k) == h {
			return i
		}
	}
	return -1
}

// hopConnection is Connection's bit in a set of hopHeaders found, taken
// from the list so that reordering it cannot break stripHopByHop.
var hopConnection = uint32(1) << hopIndex([]byte(hdrConnection))

// header is the part of fasthttp's RequestHeader and ResponseHeader that
// hop-by-hop removal needs.
type header interface {
	Peek(key string) []byte
	Del(key string)
	DelBytes(key []byte)
}

var (
	_ header = (*fasthttp.RequestHeader)(nil)
	_ header = (*fasthttp.ResponseHeader)(nil)
)

// stripRequestHopByHop removes hop-by-hop headers from a request going
// upstream. One scan finds which are there; in the usual request, none,
// and nothing is deleted.
func stripRequestHopByHop(h *fasthttp.RequestHeader, buf []byte) []byte {
	var found uint32
	for k := range h.All() {
		if i := hopIndex(k); i >= 0 {
			found |= 1 << i
		}
	}
	if found == 0 {
		return buf
	}
	return stripHopByHop(h, buf, found)
}

// stripResponseHopByHop removes hop-by-hop headers from an upstream response.
// Its loop is stripRequestHopByHop's again: ranging over All of a concrete
// type keeps the iterator on the stack (see core/hdr).
func stripResponseHopByHop(h *fasthttp.ResponseHeader, buf []byte) []byte {
	var found uint32
	for k := range h.All() {
		if i := hopIndex(k); i >= 0 {
			found |= 1 << i
		}
	}
	if found == 0 {
		return buf
	}
	return stripHopByHop(h, buf, found)
}

// stripHopByHop removes the hop-by-hop headers in found (bits of
// hopHeaders) and the headers Connection names. Each deletion scans the
// header, so only those there are deleted: a browser's Connection:
// keep-alive, or an upstream's Keep-Alive: timeout=5, costs a scan or two,
// not one per hop-by-hop name. buf is scratch space; the grown buffer is
// returned.
func stripHopByHop(h header, buf []byte, found uint32) []byte {
	if found&hopConnection != 0 {
		// Copy Connection's value: deleting headers may move it.
		buf = append(buf[:0], h.Peek(hdrConnection)...)
		for v := buf; len(v) > 0; {
			var tok []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, nil
			}
			if tok = bytes.TrimSpace(tok); len(tok) > 0 {
				hdr.DelBytes(h, tok)
			}
		}
	}
	for i, name := range hopHeaders {
		if found&(1<<i) != 0 {
			hdr.Del(h, name)
		}
	}
	return buf
}

// setForwarded sets X-Forwarded-For, -Proto, -Host and X-Real-IP on the
// request going upstream and records the client IP in x.
//
// The peer's own X-Forwarded-* are believed only when the peer is a trusted
// proxy; then the client IP is the rightmost X-Forwarded-For entry that is
// not trusted (never the leftmost, which any client can forge). From an
// untrusted peer they are replaced, and Forwarded is removed.
//
// Each of the four reaches the upstream exactly once, whatever the client
// sent: replacing only the first of two X-Forwarded-Proto lines would pass
// the second on for an upstream to believe. One scan counts them; in the
// usual request, which has none, the four are appended without another.
func setForwarded(x *exchange, ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	var nFor, nRealIP, nProto, nHost, nForwarded int
	for k := range h.All() {
		switch string(k) {
		case hdrXForwardedFor:
			nFor++
		case hdrXRealIP:
			nRealIP++
		case hdrXForwardedProto:
			nProto++
		case hdrXForwardedHost:
			nHost++
		case hdrForwarded:
			nForwarded++
		}
	}
	trusted := x.trustedPeer
	x.buf = append(x.buf[:0], x.xff...)
	if len(x.buf) > 0 {
		x.buf = append(x.buf, ", "...)
	}
	x.buf = x.peer.AppendTo(x.buf)
	replaceHeader(h, hdrXForwardedFor, nFor, x.buf)
	x.buf = x.clientIP.AppendTo(x.buf[:0])
	replaceHeader(h, hdrXRealIP, nRealIP, x.buf)
	// A trusted proxy's one X-Forwarded-Proto and -Host stay as they are;
	// of several, one is kept (fasthttp's first: deleting headers moves
	// others, so not always the first sent).
	if !trusted || nProto != 1 {
		switch {
		case trusted && nProto > 1:
			x.buf = append(x.buf[:0], h.Peek(hdrXForwardedProto)...)
		case ctx.IsTLS():
			x.buf = append(x.buf[:0], "https"...)
		default:
			x.buf = append(x.buf[:0], "http"...)
		}
		replaceHeader(h, hdrXForwardedProto, nProto, x.buf)
	}
	if !trusted || nHost != 1 {
		if trusted && nHost > 1 {
			x.buf = append(x.buf[:0], h.Peek(hdrXForwardedHost)...)
		} else {
			x.buf = append(x.buf[:0], h.Host()...)
		}
		replaceHeader(h, hdrXForwardedHost, nHost, x.buf)
	}
	if !trusted && nForwarded > 0 {
		hdr.DelRequest(h, hdrForwarded)
	}
}

// replaceHeader makes value the only header name of h, which had n of
// them. value must not be h's memory.
func replaceHeader(h *fasthttp.RequestHeader, name string, n int, value []byte) {
	if n > 0 {
		hdr.DelRequest(h, name)
	}
	h.AddBytesV(name, value)
}

// resolveClient records in x the peer, whether it is a trusted proxy, and
// the client IP: the peer, or when the peer is trusted the rightmost
// X-Forwarded-For entry that is not (see setForwarded). Rate limits and
// logs use this IP, never the leftmost X-Forwarded-For entry.
//
// It runs before admit deletes any header, so that the chain is the one
// that came whatever the deletions do (fasthttp's own Del, unlike
// core/hdr's, could swap two X-Forwarded-For lines and make a
// client-chosen entry the rightmost). x.xff keeps it for setForwarded.
func (s *Snapshot) resolveClient(x *exchange, ctx *fasthttp.RequestCtx) {
	x.peer = remoteAddr(ctx)
	x.trustedPeer = s.isTrusted(x.peer)
	x.xff = x.appendForwardedFor(x.xff[:0], &ctx.Request.Header)
	x.clientIP = s.clientIP(x.xff, x.peer)
}

// appendForwardedFor appends the incoming X-Forwarded-For entries, joined,
// when the peer is trusted; nothing otherwise.
func (x *exchange) appendForwardedFor(dst []byte, h *fasthttp.RequestHeader) []byte {
	if !x.trustedPeer {
		return dst
	}
	for i, v := range h.PeekAll(hdrXForwardedFor) {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
	}
	return dst
}

// remoteAddr returns the peer's IP, IPv4-mapped addresses unmapped.
func remoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

func (s *Snapshot) isTrusted(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP walks the X-Forwarded-For list xff right to left past trusted
// proxies. The peer is trusted when xff is non-empty. An entry that is not an
// IP stops the walk at the last trusted hop.
func (s *Snapshot) clientIP(xff []byte, peer netip.Addr) netip.Addr {
	client := peer
	for len(xff) > 0 {
		var entry []byte
		if i := bytes.LastIndexByte(xff, ','); i >= 0 {
			entry, xff = xff[i+1:], xff[:i]
		} else {
			entry, xff = xff, nil
		}
		a, ok := parseForwardedIP(bytes.TrimSpace(entry))
		if !ok {
			return client
		}
		client = a
		if !s.isTrusted(a) {
			return a
		}
	}
	return client
}

// parseForwardedIP parses an X-Forwarded-For entry: an IP, or an IP with a
// port ("1.2.3.4:80", "[::1]:80") as some proxies write.
func parseForwardedIP(b []byte) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(b2s(b)); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(b2s(b)); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// b2s converts b to a string without copying. The string must not outlive b
// nor be kept after b changes.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// s2b converts s to a byte slice without copying. The slice must not be
// modified.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
