package stub

import (
	"bytes"
	"iter"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// echo answers with the JSON echo of the request (see Server.Handler).
func (s *Server) echo(ctx *fasthttp.RequestCtx, k *knobs) {
	bp := acquireBuf()
	b := s.appendEcho((*bp)[:0], ctx)
	ctx.SetStatusCode(k.status)
	if k.chunked {
		// slow path: the stream outlives the scratch buffer.
		setJSONBody(ctx, bytes.Clone(b), true)
	} else {
		ctx.SetContentType(contentTypeJSON)
		ctx.SetBody(b)
	}
	*bp = b
	releaseBuf(bp)
}

// appendEcho appends the JSON echo of the request in ctx to dst.
func (s *Server) appendEcho(dst []byte, ctx *fasthttp.RequestCtx) []byte {
	h := &ctx.Request.Header
	uri := h.RequestURI()
	path, query := splitURI(uri)
	body := ctx.Request.Body()
	dst = append(dst, `{"name":`...)
	dst = append(dst, s.nameJSON...)
	dst = appendField(dst, "method", h.Method())
	dst = appendField(dst, "proto", h.Protocol())
	dst = appendField(dst, "uri", uri)
	dst = appendField(dst, "path", path)
	dst = appendField(dst, "query", query)
	dst = appendField(dst, "host", h.Host())
	dst = append(dst, `,"headers":`...)
	dst = appendHeaders(dst, receivedHeaders(h))
	dst = appendField(dst, "body", body)
	dst = append(dst, `,"body_len":`...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = appendField(dst, "remote_addr", ctx.RemoteAddr().String())
	return append(dst, '}')
}

// splitURI splits a raw request URI at its first '?'.
func splitURI(uri []byte) (path, query []byte) {
	n := bytes.IndexByte(uri, '?')
	if n < 0 {
		return uri, nil
	}
	return uri[:n], uri[n+1:]
}

// receivedHeaders iterates the headers of h in the order they were received,
// duplicates included. A request not read from the wire has no received
// order; its headers come in fasthttp's order.
func receivedHeaders(h *fasthttp.RequestHeader) iter.Seq2[[]byte, []byte] {
	if len(h.RawHeaders()) > 0 {
		return h.AllInOrder()
	}
	return h.All()
}

// appendHeaders appends headers as a JSON array of [name, value] pairs.
func appendHeaders(dst []byte, headers iter.Seq2[[]byte, []byte]) []byte {
	dst = append(dst, '[')
	first := true
	for k, v := range headers {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '[')
		dst = appendJSONString(dst, k)
		dst = append(dst, ',')
		dst = appendJSONString(dst, v)
		dst = append(dst, ']')
	}
	return append(dst, ']')
}

// appendField appends `,"name":"value"` with value JSON-escaped.
func appendField[T ~string | ~[]byte](dst []byte, name string, value T) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, value)
}

// appendJSONString appends s as a JSON string, quotes included. Invalid
// UTF-8 bytes become U+FFFD, like encoding/json does.
func appendJSONString[T ~string | ~[]byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := decodeRune(s, i)
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				start = i + 1
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = appendEscape(dst, c)
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// decodeRune decodes the UTF-8 sequence at s[i:].
func decodeRune[T ~string | ~[]byte](s T, i int) (rune, int) {
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s[i:])
	return utf8.DecodeRune(buf[:n])
}

// appendEscape appends the JSON escape of the ASCII byte c.
func appendEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}

// bufPool holds echo scratch buffers; see releaseBuf for the bound.
var bufPool sync.Pool

// maxPooledBuf bounds the buffers kept in bufPool, so one huge echo does not
// pin memory.
const maxPooledBuf = 1 << 20

// acquireBuf returns an empty scratch buffer. releaseBuf returns it.
func acquireBuf() *[]byte {
	bp, _ := bufPool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 4<<10)
		bp = &b
	}
	return bp
}

// releaseBuf returns bp to the pool unless it grew beyond maxPooledBuf.
// bp must not be used afterwards.
func releaseBuf(bp *[]byte) {
	if cap(*bp) > maxPooledBuf {
		return
	}
	*bp = (*bp)[:0]
	bufPool.Put(bp)
}

// Echo is the JSON an echo answers with, for clients that decode it.
type Echo struct {
	Name   string `json:"name"`
	Method string `json:"method"`
	Proto  string `json:"proto"`
	// URI is the request URI exactly as received; Path and Query are its
	// raw parts before and after '?'.
	URI   string `json:"uri"`
	Path  string `json:"path"`
	Query string `json:"query"`
	Host  string `json:"host"`
	// Headers are the received headers in wire order, duplicates included.
	Headers    [][2]string `json:"headers"`
	Body       string      `json:"body"`
	BodyLen    int         `json:"body_len"`
	RemoteAddr string      `json:"remote_addr"`
}

// Values returns the values of header name as received, in order; names
// compare case-insensitively.
func (e *Echo) Values(name string) []string {
	var vs []string
	for _, kv := range e.Headers {
		if strings.EqualFold(kv[0], name) {
			vs = append(vs, kv[1])
		}
	}
	return vs
}
