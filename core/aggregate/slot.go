package aggregate

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core"
)

// slot is one backend's call within a fanout: its request, response and
// result. A slot is used by one goroutine at a time: the request's, or the
// worker it is handed to until the worker reports it on done.
type slot struct {
	f    *fanout
	b    *backend
	req  fasthttp.Request
	resp fasthttp.Response
	c    core.Call
	uri  []byte
	buf  []byte // a streamed body, read up to max_body

	// Outcome: err (the call failed), status (a non-2xx answer) or reason
	// (any other failure) when the backend failed; else body, and val when
	// decoded.
	err    *core.Error
	status int
	reason string
	body   []byte
	src    any // the decoded response as received, for {respN...}
	val    any // what is merged: src after target, allow, deny, rename
}

// maxPooledBuf caps the streamed-body buffer a pooled slot keeps.
const maxPooledBuf = 64 << 10

func (s *slot) reset() {
	s.req.Reset()
	s.resp.Reset()
	s.c = core.Call{}
	s.uri = s.uri[:0]
	if cap(s.buf) > maxPooledBuf {
		s.buf = nil
	}
	s.buf = s.buf[:0]
	s.err, s.status, s.reason = nil, 0, ""
	s.body, s.src, s.val = nil, nil, nil
}

func (s *slot) failed() bool { return s.err != nil || s.status != 0 || s.reason != "" }

// prepare builds the slot's request, started at now; false when a field
// its path refers to is unusable (s.reason says which).
func (s *slot) prepare(now time.Time) bool {
	b, f := s.b, s.f
	s.uri = s.uri[:0]
	for i := range b.parts {
		p := &b.parts[i]
		var v []byte
		switch {
		case p.queryArg != nil:
			v = f.ctx.QueryArgs().PeekBytes(p.queryArg)
		case p.param >= 0:
			v = f.r.ParamAt(p.param)
		case p.ref >= 0:
			var ok bool
			if v, ok = f.appendField(f.buf[:0], p); !ok {
				s.reason = p.missing
				return false
			}
			f.buf = v
		default:
			s.uri = append(s.uri, p.literal...)
			continue
		}
		if p.query {
			s.uri = fasthttp.AppendQuotedArg(s.uri, v)
		} else {
			s.uri = core.AppendQuotedPath(s.uri, v)
		}
	}
	req := &s.req
	req.Header.SetMethodBytes(strGET)
	req.SetRequestURIBytes(s.uri)
	s.setHeaders(&req.Header)
	s.c.Start = now
	s.c.Deadline = now.Add(b.timeout)
	if f.deadline.Before(s.c.Deadline) {
		s.c.Deadline = f.deadline
	}
	return true
}

// setHeaders sets the backend's request headers: X-Request-ID, the
// X-Forwarded-* of the client, and the client headers the backend lists.
func (s *slot) setHeaders(h *fasthttp.RequestHeader) {
	ctx, r := s.f.ctx, s.f.r
	h.SetBytesKV(strXRequestID, r.RequestID)
	if r.ClientIP.IsValid() {
		s.f.buf = r.ClientIP.AppendTo(s.f.buf[:0])
		h.SetBytesKV(strXFF, s.f.buf)
		h.SetBytesKV(strXRealIP, s.f.buf)
	}
	if ctx.IsTLS() {
		h.SetBytesKV(strXFProto, strHTTPS)
	} else {
		h.SetBytesKV(strXFProto, strHTTP)
	}
	h.SetBytesKV(strXFHost, ctx.Host())
	for _, name := range s.b.headers {
		if v := ctx.Request.Header.PeekBytes(name); len(v) > 0 {
			h.SetBytesKV(name, v)
		}
	}
}

// call makes the backend's call and reads its response.
func (s *slot) call() {
	if s.err = s.b.up.Do(&s.req, &s.resp, &s.c); s.err != nil {
		return
	}
	if !s.read() {
		return
	}
	s.decode()
}

// read checks the response's status and type and takes its body, up to
// max_body; false when the backend failed.
func (s *slot) read() bool {
	resp := &s.resp
	if st := resp.StatusCode(); st < 200 || st > 299 {
		s.status = st
		return false
	}
	if ct := resp.Header.ContentType(); len(ct) > 0 && !isJSONType(ct) || len(resp.Header.ContentEncoding()) > 0 {
		s.reason = reasonNotJSON
		return false
	}
	max := s.f.t.maxBody
	if n := resp.Header.ContentLength(); n > max {
		s.reason = reasonTooLarge
		return false
	}
	if !resp.IsBodyStream() {
		if s.body = resp.Body(); len(s.body) > max {
			s.reason = reasonTooLarge
			return false
		}
		return true
	}
	var err error
	s.buf, err = readCapped(s.buf[:0], resp.BodyStream(), max)
	resp.CloseBodyStream() //nolint:errcheck // the stream's connection is closed, not pooled, when unread
	switch {
	case err == errTooLarge:
		s.reason = reasonTooLarge
		return false
	case err != nil:
		s.reason = reasonBodyRead
		return false
	}
	s.body = s.buf
	return true
}

var errTooLarge = errors.New("aggregate: body too large")

// readCapped appends r's bytes to dst, up to max: errTooLarge when r has
// more.
func readCapped(dst []byte, r io.Reader, max int) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		limit := min(cap(dst), max+1)
		n, err := r.Read(dst[len(dst):limit])
		dst = dst[:len(dst)+n]
		if len(dst) > max {
			return dst, errTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// isJSONType reports whether a Content-Type is JSON: application/json or
// a +json type, with any parameters.
func isJSONType(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	return bytes.EqualFold(ct, strContentJSON) || len(ct) > 5 && bytes.EqualFold(ct[len(ct)-5:], []byte("+json"))
}
