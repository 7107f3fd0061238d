package soap

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"fastgate/core"
)

// Terminal answers a soap route: it builds the envelope, POSTs it to the
// SOAP service through the upstream and converts the answer to JSON. It
// is immutable once built and safe for concurrent use; the state of a
// request is pooled. Unlike the proxy it allocates per request (the XML
// decoder, the JSON body's fields, converted names).
type Terminal struct {
	up      *core.Upstream
	timeout time.Duration // 0: the upstream's timeouts.request
	uri     []byte
	parts   []part
	// head and tail are the envelope around the template.
	head, tail  []byte
	contentType []byte
	soapAction  []byte // nil in SOAP 1.2

	responsePath []string
	errNoPath    *core.Error
	opts         Options
	faultStatus  int
	faultMap     []faultStatus
	faults       *metrics.Counter

	states sync.Pool
}

var _ core.Terminal = (*Terminal)(nil)

// part is a piece of the template: literal XML, route parameter param, a
// query argument or a field of the JSON request body.
type part struct {
	literal   []byte
	param     int // -1: none
	query     []byte
	body      []string
	missing   *core.Error
	notScalar *core.Error
}

type faultStatus struct {
	code   []byte // local name
	status int
}

// maxResponseBody caps a SOAP answer read from a streamed body.
const maxResponseBody = 16 << 20

// maxPooledBuf caps the buffers a pooled state keeps.
const maxPooledBuf = 256 << 10

// Errors of the request path. Their texts are JSON-safe.
var (
	errBodyNotObject = newError(fasthttp.StatusBadRequest, "soap: the request body is not a JSON object, which the SOAP template reads {body...} fields from")
	errTooLarge      = newError(fasthttp.StatusBadGateway, "soap: the SOAP answer exceeds 16MiB")
	errBodyRead      = newError(fasthttp.StatusBadGateway, "soap: the SOAP answer's body could not be read")
	errNoBody        = newError(fasthttp.StatusBadGateway, "soap: the SOAP envelope of the answer has no Body")
)

var (
	strPOST          = []byte(fasthttp.MethodPost)
	strContentJSON   = []byte("application/json")
	strSOAPAction    = "SOAPAction"
	strXRequestID    = "X-Request-ID"
	strAcceptXML     = []byte("text/xml, application/soap+xml")
	strDefaultReason = []byte("SOAP fault")
)

// state is the pooled state of one request.
type state struct {
	req     fasthttp.Request
	resp    fasthttp.Response
	doc     Doc
	buf     []byte
	decoded bool
	fields  map[string]any // the JSON request body, once decoded
}

func (t *Terminal) acquire() *state {
	if st, ok := t.states.Get().(*state); ok {
		return st
	}
	return &state{}
}

func (t *Terminal) release(st *state) {
	st.req.Reset()
	st.resp.Reset()
	st.doc.Reset()
	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	st.buf = st.buf[:0]
	st.decoded, st.fields = false, nil
	t.states.Put(st)
}

// Serve implements core.Terminal.
func (t *Terminal) Serve(ctx *fasthttp.RequestCtx, r *core.Request) {
	st := t.acquire()
	defer t.release(st)
	if e := t.buildRequest(st, ctx, r); e != nil {
		core.WriteError(&ctx.Response, e, r.RequestID)
		return
	}
	c := r.Call()
	c.Start = ctx.Time()
	if t.timeout > 0 {
		c.Deadline = c.Start.Add(t.timeout)
	}
	c.Client = r
	if e := t.up.Do(&st.req, &st.resp, c); e != nil {
		core.WriteError(&ctx.Response, e, r.RequestID)
		return
	}
	t.answer(st, ctx, r)
}

// buildRequest writes the envelope and headers of the call into st.req,
// or returns the client's error (a missing body field) with nothing sent.
func (t *Terminal) buildRequest(st *state, ctx *fasthttp.RequestCtx, r *core.Request) *core.Error {
	buf := append(st.buf[:0], t.head...)
	for i := range t.parts {
		p := &t.parts[i]
		switch {
		case p.param >= 0:
			buf = appendXMLEscaped(buf, r.ParamAt(p.param))
		case p.query != nil:
			buf = appendXMLEscaped(buf, ctx.QueryArgs().PeekBytes(p.query))
		case p.body != nil:
			v, e := st.field(ctx, p)
			if e != nil {
				st.buf = buf
				return e
			}
			buf = appendXMLEscaped(buf, v)
		default:
			buf = append(buf, p.literal...)
		}
	}
	buf = append(buf, t.tail...)
	st.buf = buf
	req := &st.req
	req.Header.SetMethodBytes(strPOST)
	req.SetRequestURIBytes(t.uri)
	req.Header.SetContentTypeBytes(t.contentType)
	if t.soapAction != nil {
		req.Header.SetBytesV(strSOAPAction, t.soapAction)
	}
	req.Header.SetBytesV(fasthttp.HeaderAccept, strAcceptXML)
	req.Header.SetBytesV(strXRequestID, r.RequestID)
	req.SetBody(buf)
	return nil
}

// field returns the text of the JSON body's field of p, decoding the body
// on first use.
func (st *state) field(ctx *fasthttp.RequestCtx, p *part) ([]byte, *core.Error) {
	if !st.decoded {
		st.decoded = true
		body := ctx.PostBody()
		if len(bytes.TrimSpace(body)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, errBodyNotObject
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, errBodyNotObject
			}
			st.fields = m
		}
	}
	var v any = st.fields
	for _, name := range p.body {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, p.missing
		}
		if v, ok = m[name]; !ok {
			return nil, p.missing
		}
	}
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case json.Number:
		return []byte(x), nil
	case bool:
		return strconv.AppendBool(nil, x), nil
	case nil:
		return nil, p.missing
	}
	return nil, p.notScalar
}

// answer turns the SOAP service's response in st.resp into the client's.
func (t *Terminal) answer(st *state, ctx *fasthttp.RequestCtx, r *core.Request) {
	resp := &st.resp
	body, e := st.body()
	if e != nil {
		core.WriteError(&ctx.Response, e, r.RequestID)
		return
	}
	d := &st.doc
	if err := d.Parse(body); err != nil {
		t.badAnswer(ctx, r, resp, "with a body that is not XML ("+err.Error()+")")
		return
	}
	ns := d.NS(0)
	if d.Local(0) != "Envelope" || ns != NS11 && ns != NS12 {
		t.badAnswer(ctx, r, resp, "with XML that is not a SOAP envelope (root element "+d.Local(0)+")")
		return
	}
	b := d.Child(0, "Body")
	if b < 0 || d.NS(b) != ns {
		core.WriteError(&ctx.Response, errNoBody, r.RequestID)
		return
	}
	first := d.FirstChild(b)
	if first >= 0 && d.Local(first) == "Fault" && d.NS(first) == ns {
		t.fault(st, ctx, r, first, ns)
		return
	}
	if s := resp.StatusCode(); s < 200 || s > 299 {
		t.badAnswer(ctx, r, resp, "without a fault")
		return
	}
	sel := first
	if t.responsePath != nil {
		sel = b
		for _, name := range t.responsePath {
			if sel = d.Child(sel, name); sel < 0 {
				core.WriteError(&ctx.Response, t.errNoPath, r.RequestID)
				return
			}
		}
	}
	out := st.buf[:0]
	if sel < 0 {
		out = append(out, "null"...) // an empty Body
	} else {
		out = d.AppendJSON(out, sel, &t.opts)
	}
	out = append(out, '\n')
	st.buf = out
	cr := &ctx.Response
	cr.Reset()
	cr.SetStatusCode(fasthttp.StatusOK)
	cr.Header.SetContentTypeBytes(strContentJSON)
	cr.Header.SetBytesV(strXRequestID, r.RequestID)
	cr.SetBody(out)
}

// body returns the SOAP answer's body, reading a streamed one up to
// maxResponseBody.
func (st *state) body() ([]byte, *core.Error) {
	resp := &st.resp
	if !resp.IsBodyStream() {
		return resp.Body(), nil
	}
	defer resp.CloseBodyStream() //nolint:errcheck // an unread stream's connection is closed, not pooled
	buf := st.buf[:0]
	rd := io.LimitReader(resp.BodyStream(), maxResponseBody+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errBodyRead
		}
	}
	if len(buf) > maxResponseBody {
		return nil, errTooLarge
	}
	// The body is kept apart from st.buf, which the JSON answer reuses.
	body := bytes.Clone(buf)
	st.buf = buf[:0]
	return body, nil
}

// badAnswer answers 502 for a SOAP answer that is neither a result nor a
// fault.
func (t *Terminal) badAnswer(ctx *fasthttp.RequestCtx, r *core.Request, resp *fasthttp.Response, what string) {
	msg := "soap: the SOAP service answered HTTP " + strconv.Itoa(resp.StatusCode())
	if ct := resp.Header.ContentType(); len(ct) > 0 {
		msg += " (Content-Type " + string(ct) + ")"
	}
	core.WriteError(&ctx.Response, newError(fasthttp.StatusBadGateway, msg+" "+what), r.RequestID)
}

// fault answers the SOAP fault f (of envelope namespace ns) as JSON:
// {"error":faultstring,"fault_code":"...","detail":{...},"status":502,"request_id":"..."}.
func (t *Terminal) fault(st *state, ctx *fasthttp.RequestCtx, r *core.Request, f int32, ns string) {
	d := &st.doc
	var code, reason []byte
	detail := int32(-1)
	if ns == NS11 {
		code = d.text(d.Child(f, "faultcode"))
		reason = d.text(d.Child(f, "faultstring"))
		detail = d.Child(f, "detail")
	} else {
		if c := d.Child(f, "Code"); c >= 0 {
			code = d.text(d.Child(c, "Value"))
		}
		if rs := d.Child(f, "Reason"); rs >= 0 {
			reason = d.text(d.Child(rs, "Text"))
		}
		detail = d.Child(f, "Detail")
	}
	if len(reason) == 0 {
		reason = strDefaultReason
	}
	status := t.faultStatus
	local := code
	if i := bytes.LastIndexByte(code, ':'); i >= 0 {
		local = code[i+1:]
	}
	for _, fm := range t.faultMap {
		if bytes.Equal(fm.code, local) {
			status = fm.status
			break
		}
	}
	t.faults.Inc()
	out := append(st.buf[:0], `{"error":`...)
	out = appendJSONString(out, reason)
	out = append(out, `,"fault_code":`...)
	out = appendJSONString(out, code)
	if detail >= 0 {
		out = append(out, `,"detail":`...)
		out = d.AppendJSON(out, detail, &t.opts)
	}
	out = append(out, `,"status":`...)
	out = appendInt(out, status)
	out = append(out, `,"request_id":`...)
	out = appendJSONString(out, r.RequestID)
	out = append(out, "}\n"...)
	st.buf = out
	cr := &ctx.Response
	cr.Reset()
	cr.SetStatusCode(status)
	cr.Header.SetContentTypeBytes(strContentJSON)
	cr.Header.SetBytesV(strXRequestID, r.RequestID)
	cr.SetBody(out)
}

// text returns the trimmed text of element i, nil for -1.
func (d *Doc) text(i int32) []byte {
	if i < 0 {
		return nil
	}
	return d.Text(i)
}

// appendXMLEscaped appends s escaped for XML text and attribute values.
func appendXMLEscaped(dst, s []byte) []byte {
	for _, c := range s {
		switch c {
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
