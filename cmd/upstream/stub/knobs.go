package stub

import (
	"bytes"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// knobs is how one request is answered: Options defaults, overridden by the
// request's knobs.
type knobs struct {
	latency   time.Duration
	status    int
	size      int
	statusSet bool // the request gave the status knob
	sizeSet   bool // the request gave the size knob
	chunked   bool
	hang      bool
	reset     bool
	close     bool
	echo      bool
}

// defaultKnobs returns the knob values of opts.
func defaultKnobs(opts *Options) knobs {
	k := knobs{
		latency: opts.Latency,
		status:  opts.Status,
		size:    opts.Size,
		echo:    opts.Echo,
		hang:    opts.Hang,
	}
	if k.status == 0 {
		k.status = DefaultStatus
	}
	switch {
	case k.size == 0:
		k.size = DefaultSize
	case k.size < 0:
		k.size = 0
	}
	return k
}

// knobID names a knob in knobs.set.
type knobID uint8

const (
	knobLatency knobID = iota
	knobStatus
	knobSize
	knobChunked
	knobHang
	knobReset
	knobClose
	knobEcho
)

// knobDef is one knob: where it is read from and what a valid value is.
type knobDef struct {
	id     knobID
	name   string // "latency"
	header string // "X-Stub-Latency"
	query  string // "stub_latency"
	want   string // what a valid value is, for the 400 message
}

// knobDefs lists every knob, in the order they are read.
var knobDefs = [...]knobDef{
	{knobLatency, "latency", "X-Stub-Latency", "stub_latency", "a Go duration from 0s to 60s such as 50ms"},
	{knobStatus, "status", "X-Stub-Status", "stub_status", "an integer from 100 to 599"},
	{knobSize, "size", "X-Stub-Size", "stub_size", "a byte count from 0 to 107374182400 (100 GiB)"},
	{knobChunked, "chunked", "X-Stub-Chunked", "stub_chunked", "1 or 0"},
	{knobHang, "hang", "X-Stub-Hang", "stub_hang", "1 or 0"},
	{knobReset, "reset", "X-Stub-Reset", "stub_reset", "1 or 0"},
	{knobClose, "close", "X-Stub-Close", "stub_close", "1 or 0"},
	{knobEcho, "echo", "X-Stub-Echo", "stub_echo", "1 or 0"},
}

// knobError is an invalid knob value; def is nil when there is none.
// value aliases the request and is valid only during the request.
type knobError struct {
	def   *knobDef
	value []byte
}

const (
	knobHeaderPrefix = "x-stub-"
	knobQueryPrefix  = "stub_"
)

// parseKnobs returns the knobs of the request, or the first invalid one.
func (s *Server) parseKnobs(ctx *fasthttp.RequestCtx) (knobs, knobError) {
	k := s.defaults
	h := &ctx.Request.Header
	inHeader := mayHaveKnobHeader(h.RawHeaders())
	inQuery := bytes.Contains(h.RequestURI(), []byte(knobQueryPrefix))
	if !inHeader && !inQuery {
		// fast path: no knob, no per-knob lookups.
		return k, knobError{}
	}
	var args *fasthttp.Args
	if inQuery {
		args = ctx.QueryArgs()
	}
	for i := range knobDefs {
		d := &knobDefs[i]
		v := knobValue(h, args, d, inHeader)
		if len(v) > 0 && !k.set(d.id, v) {
			return k, knobError{def: d, value: v}
		}
	}
	return k, knobError{}
}

// knobValue returns the value of knob d: the header if given, else the query
// argument if args is not nil.
func knobValue(h *fasthttp.RequestHeader, args *fasthttp.Args, d *knobDef, inHeader bool) []byte {
	if inHeader {
		if v := h.Peek(d.header); len(v) > 0 {
			return v
		}
	}
	if args == nil {
		return nil
	}
	return args.Peek(d.query)
}

// mayHaveKnobHeader reports whether a header line of raw starts with
// "X-Stub-" in any case. An empty raw (a request not read from the wire)
// may have any header.
func mayHaveKnobHeader(raw []byte) bool {
	if len(raw) == 0 {
		return true
	}
	for len(raw) > 0 {
		if hasPrefixFold(raw, knobHeaderPrefix) {
			return true
		}
		n := bytes.IndexByte(raw, '\n')
		if n < 0 {
			return false
		}
		raw = raw[n+1:]
	}
	return false
}

// hasPrefixFold reports whether b starts with the lower-case ASCII prefix,
// ignoring the case of b.
func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// set applies value v of knob id; false means v is invalid.
func (k *knobs) set(id knobID, v []byte) bool {
	switch id {
	case knobLatency:
		return k.setLatency(v)
	case knobStatus:
		return k.setStatus(v)
	case knobSize:
		return k.setSize(v)
	case knobChunked:
		return parseBool(v, &k.chunked)
	case knobHang:
		return parseBool(v, &k.hang)
	case knobReset:
		return parseBool(v, &k.reset)
	case knobClose:
		return parseBool(v, &k.close)
	case knobEcho:
		return parseBool(v, &k.echo)
	}
	return false
}

// setLatency sets the latency from a Go duration within 0..MaxLatency.
func (k *knobs) setLatency(v []byte) bool {
	if len(v) > 32 {
		return false
	}
	d, err := time.ParseDuration(string(v))
	if err != nil || d < 0 || d > MaxLatency {
		return false
	}
	k.latency = d
	return true
}

// setStatus sets the status from an integer within 100..599.
func (k *knobs) setStatus(v []byte) bool {
	n, ok := parseDecimal(v, 599)
	if !ok || n < 100 {
		return false
	}
	k.status = n
	k.statusSet = true
	return true
}

// setSize sets the body size from a byte count within 0..MaxSize.
func (k *knobs) setSize(v []byte) bool {
	n, ok := parseDecimal(v, MaxSize)
	if !ok {
		return false
	}
	k.size = n
	k.sizeSet = true
	return true
}

// parseBool sets *dst from "1"/"true" or "0"/"false".
func parseBool(v []byte, dst *bool) bool {
	switch string(v) {
	case "1", "true":
		*dst = true
	case "0", "false":
		*dst = false
	default:
		return false
	}
	return true
}

// parseDecimal parses v as a decimal integer from 0 to limit.
func parseDecimal(v []byte, limit int) (int, bool) {
	if len(v) == 0 || len(v) > 20 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > limit {
			return 0, false
		}
	}
	return n, true
}

// writeKnobError answers 400 naming the invalid knob and its value.
func writeKnobError(ctx *fasthttp.RequestCtx, e *knobError) {
	msg := "stub: invalid " + e.def.name + " knob value " + strconv.Quote(string(e.value)) +
		" (header " + e.def.header + " or query argument " + e.def.query + "): want " + e.def.want
	b := make([]byte, 0, 2*len(msg)+64)
	b = append(b, `{"error":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"knob":`...)
	b = appendJSONString(b, e.def.name)
	b = append(b, `,"value":`...)
	b = appendJSONString(b, e.value)
	b = append(b, '}')
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	setJSONBody(ctx, b, false)
}
