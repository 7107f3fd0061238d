// Package stub serves the fake upstream services that fastgate is tested,
// benchmarked and demonstrated against:
//
//   - a plain service whose answer each request shapes with knobs (latency,
//     status, size, chunked, hang, reset, close, echo);
//   - an echo service that reports exactly what arrived (method, raw URI,
//     headers in received order, body), for checking what the gateway sends;
//   - the demo JSON APIs "users", "orders" and "products".
//
// Knobs come from the request header X-Stub-<Knob> or the query argument
// stub_<knob>; the header wins. The table is on Server.Handler.
//
// Every response carries X-Stub-Name and X-Stub-Addr, so a test sees which
// target answered.
package stub

import (
	"bytes"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

const (
	// DefaultStatus is the status of non-demo responses when Options.Status
	// is zero.
	DefaultStatus = fasthttp.StatusOK

	// DefaultSize is the body size in bytes of non-demo responses when
	// Options.Size is zero. The body is "ok": every generated body is a prefix
	// of the same repeating pattern, which starts with "ok".
	DefaultSize = 2

	// MaxLatency is the largest latency accepted, from Options or a knob.
	MaxLatency = 60 * time.Second

	// MaxSize is the largest body size in bytes accepted, from Options or a
	// knob: 100 GiB.
	MaxSize = 100 << 30

	// HangTimeout bounds the hang knob: the connection is closed without an
	// answer after this long if the client has not closed it first.
	HangTimeout = 60 * time.Second
)

// Response header names and values every stub response carries.
const (
	headerName      = "X-Stub-Name"
	headerAddr      = "X-Stub-Addr"
	serverName      = "fastgate-stub"
	contentTypeText = "text/plain; charset=utf-8"
	contentTypeJSON = "application/json"
)

// Options configures a stub service. The zero value is a plain service that
// answers 200 "ok" at once.
type Options struct {
	// Name is the service name, sent in the X-Stub-Name header of every
	// response and in the echo and demo JSON. Empty means "stub".
	Name string

	// Demo selects a demo JSON API: "users", "orders" or "products".
	// Empty means none: every path gets the plain (or echo) answer.
	Demo string

	// Latency is added before answering every request, unless the latency
	// knob overrides it. Zero means none; at most MaxLatency.
	Latency time.Duration

	// Status is the status of plain and echo responses unless the status
	// knob overrides it. Zero means DefaultStatus (200); otherwise 100..599.
	// Demo responses keep their own status unless the knob is given.
	Status int

	// Size is the body size in bytes of plain responses unless the size knob
	// overrides it. Zero means DefaultSize (2, the body "ok"); a negative
	// value means an empty body; at most MaxSize.
	Size int

	// Echo makes every request answered with its echo (see Server.Handler)
	// instead of the plain or demo body. The echo knob "0" turns it off for
	// one request.
	Echo bool

	// Hang makes every request hang (the hang knob's default): the service
	// accepts and reads requests and never answers. The hang knob "0" turns
	// it off for one request; GET /_stub/stats still answers.
	Hang bool
}

// Server is one stub service: a fasthttp handler configured by Options.
//
// A Server is safe for concurrent use by any number of connections; its
// configuration is immutable after New.
type Server struct {
	name     string
	nameJSON []byte // name as a JSON string, quotes included
	addr     string // listen address set by Start before serving; "" asks the connection

	defaults knobs    // knob values when a request gives none
	demo     *demoAPI // nil unless Options.Demo is set
	health   []byte   // demo GET /healthz body

	hangHandler fasthttp.HijackHandler // s.hangConn, bound once so hang does not allocate
	hangs       hangSet
	stopping    atomic.Bool // set by Running.Close: generated bodies stop

	// Requests received, for GET /_stub/stats (which is not counted).
	requests, gets, posts atomic.Int64
}

// New returns a Server for opts. New does not validate opts (Start does):
// an unknown Demo serves no demo, and out-of-range values are used as given.
func New(opts Options) *Server {
	s := &Server{name: opts.Name}
	if s.name == "" {
		s.name = "stub"
	}
	s.nameJSON = appendJSONString(nil, s.name)
	s.defaults = defaultKnobs(&opts)
	s.demo = newDemoAPI(opts.Demo)
	s.health = appendHealth(nil, s.nameJSON)
	s.hangHandler = s.hangConn
	return s
}

// Handler is the fasthttp request handler of the service.
//
// Knobs, from the header X-Stub-<Knob> or the query argument stub_<knob>
// (the header wins; an empty value counts as absent):
//
//	knob     value                  effect
//	latency  Go duration, 0s..60s   wait before answering (ends early on shutdown)
//	status   100..599               response status (overrides demo statuses too)
//	size     0..107374182400 bytes  plain body of exactly that many bytes (replaces a demo body)
//	chunked  1 or 0                 send the body with chunked transfer encoding
//	hang     1 or 0                 never answer: hold the connection until the client closes it or HangTimeout passes
//	reset    1 or 0                 close the TCP connection with a reset, without any response
//	close    1 or 0                 answer normally with "Connection: close", then close
//	echo     1 or 0                 answer with the echo of the request
//
// Boolean knobs also take "true" and "false". An invalid value gets 400 with
// a JSON body {"error":...,"knob":...,"value":...}. Latency applies first, so
// latency with reset or hang delays those too. Responses with status 1xx,
// 204 or 304 go out without a body, as HTTP requires; a 1xx is sent as is,
// as if it were final. Knobs are looked for only in headers as received on
// the wire (RawHeaders), not in headers set on the request afterwards.
//
// The echo is a JSON object: name, method, proto, uri (the raw request URI as
// received), path and query (uri split at the first '?'), host, headers (an
// array of [name, value] pairs in received order, duplicates included; names
// are case-normalized by fasthttp), body, body_len and remote_addr.
//
// GET /_stub/stats answers, before any knob, with the number of requests
// received so far, itself not included: {"requests":N,"get":N,"post":N}.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
	if s.stats(ctx) {
		return
	}
	s.setIdentity(ctx)
	if s.serveWebSocket(ctx) {
		return
	}
	k, bad := s.parseKnobs(ctx)
	if bad.def != nil {
		writeKnobError(ctx, &bad)
		return
	}
	if k.latency > 0 {
		wait(ctx, k.latency)
	}
	if k.reset {
		reset(ctx)
		return
	}
	if k.hang {
		s.hang(ctx)
		return
	}
	if k.close {
		ctx.SetConnectionClose()
	}
	s.answer(ctx, &k)
}

var statsPath = []byte("/_stub/stats")

// stats counts the request, or answers it when it asks for the counts.
func (s *Server) stats(ctx *fasthttp.RequestCtx) bool {
	if bytes.Equal(ctx.Path(), statsPath) {
		s.setIdentity(ctx)
		b := append([]byte(`{"requests":`), strconv.FormatInt(s.requests.Load(), 10)...)
		b = append(append(b, `,"get":`...), strconv.FormatInt(s.gets.Load(), 10)...)
		b = append(append(b, `,"post":`...), strconv.FormatInt(s.posts.Load(), 10)...)
		ctx.SetContentType(contentTypeJSON)
		ctx.SetBody(append(b, "}\n"...))
		return true
	}
	s.requests.Add(1)
	switch {
	case ctx.IsGet():
		s.gets.Add(1)
	case ctx.IsPost():
		s.posts.Add(1)
	}
	return false
}

// answer writes the echo, demo or plain response.
func (s *Server) answer(ctx *fasthttp.RequestCtx, k *knobs) {
	switch {
	case k.echo:
		s.echo(ctx, k)
	case s.demo != nil && !k.sizeSet:
		s.serveDemo(ctx, k)
	default:
		s.writePlain(ctx, k)
	}
}

// setIdentity sets the headers every response carries.
func (s *Server) setIdentity(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.SetServer(serverName)
	h.Set(headerName, s.name)
	h.Set(headerAddr, s.listenAddr(ctx))
}

// listenAddr is the address reported in X-Stub-Addr.
func (s *Server) listenAddr(ctx *fasthttp.RequestCtx) string {
	if s.addr != "" {
		return s.addr
	}
	// slow path: a Server not started by Start asks the connection.
	return ctx.LocalAddr().String()
}

// wait sleeps for d, or less if the server shuts down meanwhile.
func wait(ctx *fasthttp.RequestCtx, d time.Duration) {
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
	}
}

// writePlain writes the generated body of k.size bytes.
func (s *Server) writePlain(ctx *fasthttp.RequestCtx, k *knobs) {
	ctx.SetStatusCode(k.status)
	ctx.SetContentType(contentTypeText)
	switch {
	case k.chunked:
		ctx.SetBodyStream(acquireGenerator(k.size, &s.stopping), -1)
	case k.size > maxBufferedSize:
		// slow path: large bodies are generated while written, so memory
		// stays bounded whatever the size.
		ctx.SetBodyStream(acquireGenerator(k.size, &s.stopping), k.size)
	default:
		// fast path: a prefix of the shared immutable pattern, not copied.
		ctx.Response.SetBodyRaw(pattern[:k.size])
	}
}

// setJSONBody sets the JSON body b without copying it: b must not change
// afterwards. chunked sends it with chunked transfer encoding.
func setJSONBody(ctx *fasthttp.RequestCtx, b []byte, chunked bool) {
	ctx.SetContentType(contentTypeJSON)
	if chunked {
		ctx.SetBodyStream(bytes.NewReader(b), -1)
		return
	}
	ctx.Response.SetBodyRaw(b)
}

// appendHealth appends the demo /healthz body.
func appendHealth(dst, nameJSON []byte) []byte {
	dst = append(dst, `{"status":"ok","name":`...)
	dst = append(dst, nameJSON...)
	return append(dst, '}')
}
