package cache

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"
)

// store stores resp, the response to a GET with request header h and
// base key st.base, when it may be (RFC 9111 §3 for a shared cache) and
// the route takes it; st.key becomes the key it is stored under. It runs
// on misses and refreshes and may allocate.
func (f *Filter) store(s *store, now int64, st *state, h *fasthttp.RequestHeader, resp *fasthttp.Response) bool {
	st.key = append(st.key[:0], st.base...)
	code := resp.StatusCode()
	if code < 0 || code >= 640 || f.statuses[code/64]&(1<<(code%64)) == 0 ||
		resp.IsBodyStream() || len(resp.Body()) > f.maxObject {
		return false
	}
	var cc control
	cc.reset()
	var vary [][]byte
	var date, expires []byte
	var age int64
	for k, v := range resp.Header.All() {
		switch {
		case equalFold(k, "set-cookie"):
			return false
		case equalFold(k, "cache-control"):
			cc.parse(v)
		case equalFold(k, "vary"):
			var star bool
			if vary, star = appendVaryNames(vary, v); star {
				return false
			}
		case equalFold(k, "date"):
			date = v
		case equalFold(k, "expires"):
			expires = v
		case equalFold(k, "age"):
			age = max(0, deltaSeconds(trim(v), 0))
		}
	}
	if cc.noStore || cc.private || cc.noCache {
		return false
	}
	born := now - age*int64(time.Second)
	var freshUntil int64
	switch {
	case f.ttl > 0:
		freshUntil = now + f.ttl
	case cc.sMaxAge >= 0:
		freshUntil = born + cc.sMaxAge*int64(time.Second)
	case cc.maxAge >= 0:
		freshUntil = born + cc.maxAge*int64(time.Second)
	case expires != nil:
		freshUntil = born + expiresLifetime(expires, date, now)
	default:
		return false // no explicit freshness: not stored (no heuristics)
	}
	if freshUntil <= now {
		return false
	}
	swr, sie := max(f.swr, cc.swr*int64(time.Second)), max(f.sie, cc.sie*int64(time.Second))
	if cc.mustRevalidate {
		swr, sie = 0, 0
	}
	st.enc = appendEntryHead(st.enc[:0], born, freshUntil, freshUntil+swr, freshUntil+sie, code)
	for k, v := range resp.Header.All() {
		if storedHeader(k) {
			var ok bool
			if st.enc, ok = appendHeader(st.enc, k, v); !ok {
				return false
			}
		}
	}
	setHeadersLen(st.enc, 0)
	st.enc = append(st.enc, resp.Body()...)
	if len(vary) > 0 {
		spec := appendVary(nil, vary)
		s.setVary(st.base, spec)
		st.key = appendVariant(st.key, h, spec[1:])
	}
	s.set(st.key, st.enc)
	return true
}

// expiresLifetime is Expires minus Date (or now), in ns; 0 when Expires
// is not a date (RFC 9111 §5.3: already expired).
func expiresLifetime(expires, date []byte, now int64) int64 {
	exp, err := fasthttp.ParseHTTPDate(expires)
	if err != nil {
		return 0
	}
	base := now
	if d, err := fasthttp.ParseHTTPDate(date); err == nil && date != nil {
		base = d.UnixNano()
	}
	return exp.UnixNano() - base
}

// appendVaryNames appends the canonical header names of a Vary value;
// star reports "*".
func appendVaryNames(dst [][]byte, v []byte) (out [][]byte, star bool) {
	for len(v) > 0 {
		var d []byte
		d, v = nextDirective(v)
		switch {
		case len(d) == 0:
		case string(d) == "*":
			return dst, true
		case len(d) <= 255:
			c := canonical(string(d))
			dup := false
			for _, n := range dst {
				dup = dup || bytes.Equal(n, c)
			}
			if !dup {
				dst = append(dst, c)
			}
		}
	}
	return dst, false
}

// canonical returns name in fasthttp's canonical case (Accept-Language).
func canonical(name string) []byte {
	b := []byte(name)
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return b
}

// storedHeader reports whether response header k is kept in an entry:
// not hop-by-hop, and not one the gateway sets per response.
func storedHeader(k []byte) bool {
	switch {
	case equalFold(k, "connection"), equalFold(k, "keep-alive"), equalFold(k, "transfer-encoding"),
		equalFold(k, "content-length"), equalFold(k, "date"), equalFold(k, "age"),
		equalFold(k, "x-cache"), equalFold(k, "x-cache-key"), equalFold(k, "x-request-id"),
		equalFold(k, "proxy-connection"), equalFold(k, "trailer"), equalFold(k, "upgrade"),
		equalFold(k, "te"), equalFold(k, "set-cookie"):
		return false
	}
	return true
}

// keptIn304 reports whether a stored header is sent with a 304 (RFC 9110
// §15.4.5).
func keptIn304(k []byte) bool {
	return equalFold(k, "etag") || equalFold(k, "last-modified") || equalFold(k, "cache-control") ||
		equalFold(k, "expires") || equalFold(k, "vary") || equalFold(k, "content-location")
}

// notModified evaluates the request's If-None-Match (weak comparison, "*")
// or, without it, If-Modified-Since against the entry's ETag and
// Last-Modified (RFC 9110 §13.1). It allocates nothing.
func notModified(h *fasthttp.RequestHeader, headers []byte) bool {
	if inm := h.PeekBytes(strIfNoneMatch); len(inm) > 0 {
		etag := peekHeader(headers, "etag")
		for len(inm) > 0 {
			var t []byte
			t, inm = nextDirective(inm)
			if string(t) == "*" || (etag != nil && weakEqual(t, etag)) {
				return true
			}
		}
		return false
	}
	ims := h.PeekBytes(strIfModSince)
	if len(ims) == 0 {
		return false
	}
	lm := peekHeader(headers, "last-modified")
	if lm == nil {
		return false
	}
	if bytes.Equal(ims, lm) {
		return true // nginx's if_modified_since exact, without parsing
	}
	t, err := fasthttp.ParseHTTPDate(ims)
	if err != nil {
		return false
	}
	m, err := fasthttp.ParseHTTPDate(lm)
	return err == nil && !m.After(t)
}

// weakEqual compares two entity tags ignoring their W/ prefixes.
func weakEqual(a, b []byte) bool {
	a, _ = bytes.CutPrefix(a, []byte("W/"))
	b, _ = bytes.CutPrefix(b, []byte("W/"))
	return len(a) > 0 && bytes.Equal(a, b)
}
