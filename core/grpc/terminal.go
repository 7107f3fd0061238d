package grpc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails" // resolves status details for JSON
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/dynamicpb"

	"fastgate/core"
)

// Terminal answers a grpc route: it builds the request message from the
// HTTP request, makes the unary call through the upstream (core's Invoke:
// breaker, balancing, retries, health, metrics) and writes the response
// message, or the gRPC status, as JSON.
//
// Serve allocates (dynamic messages, protojson); nothing else of the
// gateway's request path does. Terminal is immutable once built, but for
// its lazily filled connection table, and safe for concurrent use.
type Terminal struct {
	b           *Builder
	up          *core.Upstream
	spec        *spec
	service     string
	stripPrefix string
	timeout     time.Duration
	paramIdx    []int // Request.ParamAt index of spec.params[i]
	reqMD       []mdHeader
	respMD      []mdHeader
	requests    [numCodes]*metrics.Counter

	mu     sync.RWMutex
	conns  map[string]*sharedConn // by target address: the Builder's, referenced
	closed bool
}

// mdHeader is a header name and its metadata key (lowercased).
type mdHeader struct {
	header string
	key    string
}

var (
	_ core.Terminal = (*Terminal)(nil)
	_ io.Closer     = (*Terminal)(nil)
)

// marshalJSON writes response messages: proto field names as declared
// (snake_case, as the path parameters and the config name them), fields
// with their default value left out, enums by name.
var marshalJSON = protojson.MarshalOptions{UseProtoNames: true}

// unmarshalJSON reads request bodies: proto and lowerCamelCase names are
// both accepted; an unknown field is an error (400).
var unmarshalJSON = protojson.UnmarshalOptions{}

var (
	errNoBinding    = errors.New("no method of the service matches the request's method and path")
	errClosedTarget = errors.New("grpc: terminal closed")
)

// call is one request's state across its attempts.
type call struct {
	t    *Terminal
	b    *binding
	req  *dynamicpb.Message
	resp *dynamicpb.Message
	md   metadata.MD
	st   *status.Status
	hdr  metadata.MD
	trl  metadata.MD
}

// Serve implements core.Terminal.
func (t *Terminal) Serve(ctx *fasthttp.RequestCtx, r *core.Request) {
	b, vars := t.pick(ctx, r)
	if b == nil {
		t.count(codes.NotFound)
		t.writeError(ctx, r, status.New(codes.NotFound, errNoBinding.Error()))
		return
	}
	c := &call{t: t, b: b, req: dynamicpb.NewMessage(b.m.in)}
	if err := c.build(ctx, r, vars); err != nil {
		t.count(codes.InvalidArgument)
		t.writeError(ctx, r, status.New(codes.InvalidArgument, err.Error()))
		return
	}
	c.md = t.outgoing(ctx)
	start := ctx.Time()
	kc := core.Call{Start: start, Deadline: start.Add(t.timeout), Client: r}
	if gerr := t.up.Invoke(&kc, idempotent(ctx.Method()), c.attempt); gerr != nil {
		code := codes.Unavailable
		if gerr.Status == fasthttp.StatusGatewayTimeout {
			code = codes.DeadlineExceeded
		}
		t.count(code)
		r.Fail(ctx, gerr)
		return
	}
	kc.Observe(time.Now())
	if c.st != nil && c.st.Code() != codes.OK {
		t.count(c.st.Code())
		t.writeError(ctx, r, c.st)
		t.copyMetadata(ctx, c)
		return
	}
	t.count(codes.OK)
	out, err := c.marshalResponse()
	if err != nil {
		t.writeError(ctx, r, status.New(codes.Internal, "grpc: response not writable as JSON: "+err.Error()))
		return
	}
	ctx.Response.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentType("application/json")
	t.copyMetadata(ctx, c)
	ctx.Response.SetBodyRaw(out)
}

func (t *Terminal) count(c codes.Code) {
	if c < numCodes {
		t.requests[c].Inc()
	}
}

// pick returns the binding of the request and its path variables' values,
// or nil when none matches.
func (t *Terminal) pick(ctx *fasthttp.RequestCtx, r *core.Request) (*binding, []string) {
	if t.service == "" {
		return t.spec.bindings[0], nil
	}
	path := string(r.Path())
	if t.stripPrefix != "" {
		rest, ok := strings.CutPrefix(path, t.stripPrefix)
		if !ok || (rest != "" && rest[0] != '/') {
			return nil, nil
		}
		path = rest
	}
	verb := string(ctx.Method())
	for _, b := range t.spec.bindings {
		if b.verb != verb {
			continue
		}
		if vals, ok := b.tmpl.match(path); ok {
			return b, vals
		}
	}
	return nil, nil
}

// idempotent reports whether a call for the HTTP method may be retried
// after it was sent.
func idempotent(method []byte) bool {
	switch string(method) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPut, fasthttp.MethodDelete, fasthttp.MethodOptions:
		return true
	}
	return false
}

// outgoing returns the request metadata: the allow-listed headers.
func (t *Terminal) outgoing(ctx *fasthttp.RequestCtx) metadata.MD {
	var md metadata.MD
	for _, h := range t.reqMD {
		v := ctx.Request.Header.Peek(h.header)
		if len(v) == 0 {
			continue
		}
		if md == nil {
			md = metadata.MD{}
		}
		md[h.key] = append(md[h.key], string(v))
	}
	return md
}

// copyMetadata sets the allow-listed response metadata as headers.
func (t *Terminal) copyMetadata(ctx *fasthttp.RequestCtx, c *call) {
	for _, h := range t.respMD {
		for _, v := range c.hdr[h.key] {
			ctx.Response.Header.Add(h.header, v)
		}
		for _, v := range c.trl[h.key] {
			ctx.Response.Header.Add(h.header, v)
		}
	}
}

// attempt makes one call to the target at addr, for Invoke.
func (c *call) attempt(addr string, deadline time.Time) core.Outcome {
	sc, err := c.t.conn(addr)
	if err != nil {
		return core.Outcome{Unsent: true}
	}
	cc := sc.cc
	cctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if c.md != nil {
		cctx = metadata.NewOutgoingContext(cctx, c.md)
	}
	c.resp = dynamicpb.NewMessage(c.b.m.out)
	c.hdr, c.trl = nil, nil
	var p peer.Peer
	err = cc.Invoke(cctx, c.b.m.path, c.req, c.resp, grpc.Header(&c.hdr), grpc.Trailer(&c.trl), grpc.Peer(&p))
	if err == nil {
		c.st = nil
		return core.Outcome{Status: fasthttp.StatusOK}
	}
	c.st = status.Convert(err)
	switch code := c.st.Code(); {
	case code == codes.DeadlineExceeded && cctx.Err() != nil:
		// The gateway's deadline passed: a timeout, not an answer.
		return core.Outcome{Timeout: true}
	case code == codes.Unavailable && p.Addr == nil:
		// No transport was had (refused, unreachable, in backoff, a
		// failed TLS handshake): nothing was sent.
		o := core.Outcome{Status: fasthttp.StatusServiceUnavailable, Unsent: true}
		if err := sc.tls.lastFailure(); err != nil {
			o.Err = core.UpstreamTLSError(err)
		}
		return o
	default:
		return core.Outcome{Status: HTTPStatus(code)}
	}
}

// conn returns the shared connection to addr.
func (t *Terminal) conn(addr string) (*sharedConn, error) {
	t.mu.RLock()
	cc := t.conns[addr]
	t.mu.RUnlock()
	if cc != nil {
		return cc, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errClosedTarget
	}
	if cc = t.conns[addr]; cc != nil {
		return cc, nil
	}
	cc, err := t.b.acquire(connKey{addr, t.up.TargetTLS(addr)}, t.up.TargetTLSFailures(addr))
	if err != nil {
		return nil, err
	}
	t.conns[addr] = cc
	return cc, nil
}

// Close releases the terminal's connections; the Builder closes those no
// other terminal uses. It implements io.Closer: core calls it once no
// snapshot uses the terminal.
func (t *Terminal) Close() error {
	t.mu.Lock()
	t.closed = true
	keys := make([]connKey, 0, len(t.conns))
	for a := range t.conns {
		keys = append(keys, connKey{a, t.up.TargetTLS(a)})
	}
	t.conns = map[string]*sharedConn{}
	t.mu.Unlock()
	for _, k := range keys {
		t.b.release(k)
	}
	return nil
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Error     string            `json:"error"`
	Code      string            `json:"code"`
	Status    int               `json:"status"`
	Details   []json.RawMessage `json:"details,omitempty"`
	RequestID string            `json:"request_id"`
}

// writeError answers with st as JSON:
// {"error":"...","code":"NOT_FOUND","status":404,"details":[...],"request_id":"..."}.
func (t *Terminal) writeError(ctx *fasthttp.RequestCtx, r *core.Request, st *status.Status) {
	e := errorBody{
		Error:     st.Message(),
		Code:      codeName(st.Code()),
		Status:    HTTPStatus(st.Code()),
		RequestID: string(r.RequestID),
	}
	for _, d := range st.Proto().GetDetails() {
		b, err := marshalJSON.Marshal(d)
		if err != nil {
			// A detail of a type the gateway does not know: its type
			// URL and bytes, as protojson would write an unknown Any.
			b, _ = json.Marshal(map[string]any{"@type": d.GetTypeUrl(), "value": d.GetValue()})
		}
		e.Details = append(e.Details, b)
	}
	body, _ := json.Marshal(&e)
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(e.Status)
	ctx.Response.Header.SetContentType("application/json")
	if len(r.RequestID) > 0 {
		ctx.Response.Header.SetBytesV("X-Request-ID", r.RequestID)
	}
	ctx.Response.SetBodyRaw(append(body, '\n'))
}

// protojsonEmitAll writes default values too, for an unset
// response_body scalar.
var protojsonEmitAll = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
