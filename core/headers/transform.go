package headers

import (
	"sync"
	"unsafe"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/hdr"
)

// Transform applies a route's header transforms: the request ops in
// Filter (after auth and the rate limit, before the terminal), the
// response ops in After (before the response, streamed or not, is
// written). It is immutable and safe for concurrent use; it allocates
// nothing per request.
type Transform struct {
	req, resp ops
}

var _ core.AfterFilter = (*Transform)(nil)

// ops are one side's compiled ops, applied in the order remove, rename,
// set, add.
type ops struct {
	remove       [][]byte // canonical names
	removePrefix [][]byte // lowercase prefixes
	rename       []rename
	set, add     []value
	any          bool
}

type rename struct {
	from string // canonical
	to   []byte // canonical
}

// value is a header name and its value template.
type value struct {
	name  []byte // canonical
	parts []part
}

type part struct {
	kind  config.HeaderPartKind
	lit   []byte
	param int // PartParam: index for Request.ParamAt
}

// fields is what the ops need of fasthttp's RequestHeader and
// ResponseHeader. Arguments passed through it escape, so they are heap
// buffers (the pooled scratch, Build-time names), never stack arrays.
type fields interface {
	PeekKeys() [][]byte
	PeekAll(key string) [][]byte
	Del(key string) // through hdr.Del, which keeps the other lines' order
	SetCanonical(key, value []byte)
	AddBytesKV(key, value []byte)
}

// Filter applies the request ops.
func (t *Transform) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	if !t.req.any {
		return true
	}
	b := acquireBuf()
	b.b = t.req.apply(&ctx.Request.Header, r, b.b)
	releaseBuf(b)
	return true
}

// After applies the response ops.
func (t *Transform) After(ctx *fasthttp.RequestCtx, r *core.Request) {
	if !t.resp.any {
		return
	}
	b := acquireBuf()
	b.b = t.resp.apply(&ctx.Response.Header, r, b.b)
	releaseBuf(b)
}

// apply runs the ops; buf is scratch space, the grown buffer is returned.
func (o *ops) apply(h fields, r *core.Request, buf []byte) []byte {
	for _, p := range o.removePrefix {
		buf = removePrefix(h, p, buf)
	}
	for _, name := range o.remove {
		hdr.DelBytes(h, name)
	}
	for i := range o.rename {
		rn := &o.rename[i]
		vs := h.PeekAll(rn.from)
		if len(vs) == 0 {
			continue
		}
		// Copy before deleting: the values live in the header.
		buf = buf[:0]
		for j, v := range vs {
			if j > 0 {
				buf = append(buf, ", "...)
			}
			buf = append(buf, v...)
		}
		hdr.Del(h, rn.from)
		h.SetCanonical(rn.to, buf)
	}
	for i := range o.set {
		buf = o.set[i].appendValue(buf[:0], r)
		h.SetCanonical(o.set[i].name, buf)
	}
	for i := range o.add {
		buf = o.add[i].appendValue(buf[:0], r)
		h.AddBytesKV(o.add[i].name, buf)
	}
	return buf
}

// appendValue appends v's value for request r to dst. Path parameters are
// decoded and may hold control bytes: those are percent-encoded, so no
// request can split a header.
func (v *value) appendValue(dst []byte, r *core.Request) []byte {
	for i := range v.parts {
		p := &v.parts[i]
		switch p.kind {
		case config.PartLiteral:
			dst = append(dst, p.lit...)
		case config.PartParam:
			dst = appendSafe(dst, r.ParamAt(p.param))
		case config.PartClientIP:
			if r.ClientIP.IsValid() {
				dst = r.ClientIP.AppendTo(dst)
			}
		case config.PartRequestID:
			dst = appendSafe(dst, r.RequestID)
		case config.PartRoute:
			dst = append(dst, r.Route...)
		case config.PartConsumer:
			if c := r.Consumer(); c != nil {
				dst = appendSafe(dst, s2b(c.Name))
			}
		}
	}
	return dst
}

// appendSafe appends s with control bytes (CR, LF, NUL ...) as %XX.
func appendSafe(dst, s []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// maxRemovals bounds the headers one prefix removes from one message.
const maxRemovals = 1024

// removePrefix deletes the headers whose names start with lowercase
// prefix. Deleting while iterating is undefined in fasthttp, so each round
// finds one name among PeekKeys (the names All yields, in a buffer the
// header keeps), copies it to buf and deletes it.
func removePrefix(h fields, prefix, buf []byte) []byte {
	for range maxRemovals {
		buf = buf[:0]
		for _, k := range h.PeekKeys() {
			if hasPrefixFold(k, prefix) {
				buf = append(buf, k...)
				break
			}
		}
		if len(buf) == 0 {
			return buf
		}
		hdr.DelBytes(h, buf)
	}
	return buf
}

// hasPrefixFold reports whether s starts with lowercase prefix, ignoring
// ASCII case.
func hasPrefixFold(s, prefix []byte) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i, c := range prefix {
		x := s[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != c {
			return false
		}
	}
	return true
}

// buf is a pooled scratch buffer for expanded values.
type buf struct{ b []byte }

// maxPooledBuf: a larger buffer (a huge value) is dropped, not pooled.
const maxPooledBuf = 64 << 10

var bufPool sync.Pool

func acquireBuf() *buf {
	if v := bufPool.Get(); v != nil {
		return v.(*buf)
	}
	return &buf{b: make([]byte, 0, 256)}
}

func releaseBuf(b *buf) {
	if cap(b.b) > maxPooledBuf {
		return
	}
	b.b = b.b[:0]
	bufPool.Put(b)
}

// s2b returns s's bytes without copying; they must not be modified.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
