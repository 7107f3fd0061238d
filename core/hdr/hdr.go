// Package hdr removes header lines from fasthttp's request and response
// headers without reordering the lines that stay.
//
// fasthttp's Del moves the last header line into the gap it leaves. When
// a line of one name is deleted before two lines of another name, those
// two can swap: a proxy must not change the order of a field's lines (RFC
// 9110 §5.3), and for some fields the order is the meaning (the hops of
// X-Forwarded-For or Via, a server's preference among WWW-Authenticate
// challenges). DelRequest and DelResponse scan the names first, on the
// stack, which also spares fasthttp's Del (a key normalized and another
// scan) when the header is not there; only a header with a repeated name
// pays more: that name's lines are deleted and appended again, in their
// order.
package hdr

import (
	"bytes"
	"iter"
	"sync"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Header is the part of fasthttp's RequestHeader and ResponseHeader that
// the slow path needs.
type Header interface {
	All() iter.Seq2[[]byte, []byte]
	Del(key string)
	PeekAll(key string) [][]byte
	AddBytesKV(key, value []byte)
}

// maxQuick bounds the header lines checked for a repeated name on the
// stack; a header with more always takes the slow path.
const maxQuick = 32

// DelRequest removes every line named key from h, keeping the order of
// the lines of every other name.
func DelRequest(h *fasthttp.RequestHeader, key string) {
	var keys [maxQuick + 1][]byte
	n, found := 0, false
	for k := range h.All() { // on the concrete type: the iterator does not escape
		found = found || equalFold(k, key)
		if !isCookie(k) && n <= maxQuick {
			keys[n] = k
			n++
		}
	}
	if found {
		del(h, key, keys[:n])
	}
}

// DelResponse is DelRequest for a response. The loop is DelRequest's
// again: ranging over All of a concrete type keeps the iterator on the
// stack; through a type parameter or an interface it allocates.
func DelResponse(h *fasthttp.ResponseHeader, key string) {
	var keys [maxQuick + 1][]byte
	n, found := 0, false
	for k := range h.All() {
		found = found || equalFold(k, key)
		if !isCookie(k) && n <= maxQuick {
			keys[n] = k
			n++
		}
	}
	if found {
		del(h, key, keys[:n])
	}
}

// DelRequestBytes is DelRequest with a []byte key, which it does not keep.
func DelRequestBytes(h *fasthttp.RequestHeader, key []byte) {
	DelRequest(h, unsafe.String(unsafe.SliceData(key), len(key)))
}

// DelResponseBytes is DelResponse with a []byte key, which it does not
// keep.
func DelResponseBytes(h *fasthttp.ResponseHeader, key []byte) {
	DelResponse(h, unsafe.String(unsafe.SliceData(key), len(key)))
}

// Del is DelRequest or DelResponse, as h is; any other header's own Del.
func Del(h interface{ Del(key string) }, key string) {
	switch h := h.(type) {
	case *fasthttp.RequestHeader:
		DelRequest(h, key)
	case *fasthttp.ResponseHeader:
		DelResponse(h, key)
	default:
		h.Del(key)
	}
}

// DelBytes is Del with a []byte key, which it does not keep.
func DelBytes(h interface{ Del(key string) }, key []byte) {
	Del(h, unsafe.String(unsafe.SliceData(key), len(key)))
}

// del deletes key from h, whose names other than cookies are keys (more
// than maxQuick: too many to check).
func del(h Header, key string, keys [][]byte) {
	if len(keys) <= maxQuick && !repeats(keys) {
		h.Del(key)
		return
	}
	delKeepingOrder(h, key)
}

// repeats reports whether a name occurs twice in keys.
func repeats(keys [][]byte) bool {
	for i, k := range keys {
		if containsName(keys[:i], k) {
			return true
		}
	}
	return false
}

// scratch holds copies of a header's repeated lines while it is rebuilt.
type scratch struct {
	names [][]byte // each repeated name once, in h's order
	ends  []int    // per name, the end of its values in vals
	vals  [][]byte // the values, by name, each name's in order
	buf   []byte   // backing bytes of names and vals
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// delKeepingOrder is Del for a header that has a repeated name: every
// repeated name other than key has its lines deleted and appended again
// in their order after key's are deleted.
func delKeepingOrder(h Header, key string) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.names, s.ends, s.vals, s.buf = s.names[:0], s.ends[:0], s.vals[:0], s.buf[:0]
	// Names first (copied: PeekAll reuses the buffer All's keys may be in).
	var seen [][]byte
	for k := range h.All() {
		if isCookie(k) || bytes.EqualFold(k, []byte(key)) || containsName(s.names, k) {
			continue
		}
		if containsName(seen, k) {
			s.names = append(s.names, bytes.Clone(k))
			continue
		}
		seen = append(seen, k)
	}
	for _, name := range s.names {
		for _, v := range h.PeekAll(string(name)) {
			s.vals = append(s.vals, bytes.Clone(v))
		}
		s.ends = append(s.ends, len(s.vals))
	}
	// Every deletion first: each moves lines, appended ones too.
	h.Del(key)
	for _, name := range s.names {
		h.Del(string(name))
	}
	start := 0
	for i, name := range s.names {
		for _, v := range s.vals[start:s.ends[i]] {
			h.AddBytesKV(name, v)
		}
		start = s.ends[i]
	}
	clear(s.vals)
	clear(s.names)
}

// equalFold reports whether k and key are equal ignoring ASCII case.
func equalFold(k []byte, key string) bool {
	if len(k) != len(key) {
		return false
	}
	for i := range len(k) {
		a, b := k[i], key[i]
		if a == b {
			continue
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// isCookie reports whether k is Cookie or Set-Cookie: fasthttp keeps
// cookies apart from the other lines, in order, and All yields a line per
// Set-Cookie; they never move.
func isCookie(k []byte) bool {
	return string(k) == "Set-Cookie" || string(k) == "Cookie"
}

func containsName(names [][]byte, k []byte) bool {
	for _, n := range names {
		if bytes.Equal(n, k) {
			return true
		}
	}
	return false
}
