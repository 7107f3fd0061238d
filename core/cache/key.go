package cache

import (
	"bytes"
	"slices"

	"github.com/valyala/fasthttp"

	"fastgate/core"
)

// Keys are text, as X-Cache-Key shows them and POST /cache/purge takes
// them:
//
//	GET api.example.com/products/1?page=2 Accept-Language=en consumer=alice
//
// "GET " for GET and HEAD alike; the host lower-cased without its port;
// the normalized path; the query by the route's query mode; then, each
// after a space, the route's vary headers (name=value), the consumer
// (per_consumer), and the values of the headers the response's Vary
// named. Bytes that could make two keys alike or break the header (space,
// controls, non-ASCII, and '%' outside the query) are %XX-escaped, so a
// space always starts a key's extras and no path can pose as another
// key's variant.

// queryMode is a compiled cache.query.
type queryMode uint8

const (
	queryKeep queryMode = iota
	querySort
	queryIgnore
)

var strGET = []byte("GET ")

// appendBaseKey appends the request's key without the response-Vary part.
func (f *Filter) appendBaseKey(dst []byte, ctx *fasthttp.RequestCtx, r *core.Request, st *state) []byte {
	dst = append(dst, strGET...)
	dst = appendHost(dst, ctx.Host())
	path := r.Path()
	if path == nil {
		path = ctx.Path()
	}
	dst = appendEscaped(dst, path, true)
	switch f.query {
	case queryKeep:
		if qs := ctx.URI().QueryString(); len(qs) > 0 {
			dst = append(dst, '?')
			dst = appendEscaped(dst, qs, false)
		}
	case querySort:
		dst = st.appendSortedQuery(dst, ctx.URI().QueryString())
	}
	for i, name := range f.vary {
		dst = appendExtra(dst, f.vary[i], ctx.Request.Header.PeekBytes(name))
	}
	if f.perConsumer {
		if c := r.Consumer(); c != nil {
			dst = append(dst, " consumer="...)
			dst = appendEscapedString(dst, c.Name)
		}
	}
	return dst
}

// appendVariant appends to a base key the request's values of the headers
// a vary spec (its names, past the kind byte) lists.
func appendVariant(dst []byte, h *fasthttp.RequestHeader, names []byte) []byte {
	for {
		var name []byte
		if name, names = nextVaryName(names); name == nil {
			return dst
		}
		dst = appendExtra(dst, name, h.PeekBytes(name))
	}
}

// appendExtra appends " name=value".
func appendExtra(dst, name, value []byte) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=')
	return appendEscaped(dst, value, true)
}

// appendHost appends host lower-cased, without its port.
func appendHost(dst, host []byte) []byte {
	end := len(host)
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			end = i
			break
		}
		if host[i] == ']' || host[i] < '0' || host[i] > '9' {
			break
		}
	}
	for _, c := range host[:end] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = appendEscapedByte(dst, c, true)
	}
	return dst
}

func appendEscaped(dst, b []byte, pct bool) []byte {
	for _, c := range b {
		dst = appendEscapedByte(dst, c, pct)
	}
	return dst
}

func appendEscapedString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = appendEscapedByte(dst, s[i], true)
	}
	return dst
}

const hexDigits = "0123456789ABCDEF"

// appendEscapedByte appends c, %XX-escaped when it is a space, a control,
// non-ASCII, or with pct a '%'.
func appendEscapedByte(dst []byte, c byte, pct bool) []byte {
	if c <= ' ' || c >= 0x7f || (pct && c == '%') {
		return append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return append(dst, c)
}

// appendSortedQuery appends "?" and qs's args sorted (bytewise, as sent:
// not decoded), empty args dropped; nothing for an empty query. It sorts
// offsets in st, allocating nothing once st's slice has grown.
func (st *state) appendSortedQuery(dst, qs []byte) []byte {
	parts := st.parts[:0]
	start := 0
	for i := 0; i <= len(qs); i++ {
		if i == len(qs) || qs[i] == '&' {
			if i > start {
				parts = append(parts, [2]int{start, i})
			}
			start = i + 1
		}
	}
	st.parts = parts
	slices.SortFunc(parts, func(a, b [2]int) int { return bytes.Compare(qs[a[0]:a[1]], qs[b[0]:b[1]]) })
	for i, p := range parts {
		if i == 0 {
			dst = append(dst, '?')
		} else {
			dst = append(dst, '&')
		}
		dst = appendEscaped(dst, qs[p[0]:p[1]], false)
	}
	return dst
}
