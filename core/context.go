package core

import (
	"io"
	"net/netip"

	"github.com/valyala/fasthttp"

	"fastgate/core/accesslog"
)

// Request is the per-request context that a route's filters and its
// terminal share, beside the fasthttp.RequestCtx: the client, the route's
// path parameters, the consumer that authentication sets, each filter's
// state slot and extra access-log fields.
//
// One Request lives in each pooled exchange. It is valid from the route
// match until the request's response phase has ended (Done) and must not
// be kept after. It is used by the request's goroutine only: a terminal
// that fans out passes it to Upstream.Do (Call.Client), never to another
// goroutine's code that outlives the call.
type Request struct {
	// ClientIP is the client's address: the peer, or past trusted proxies
	// the rightmost untrusted X-Forwarded-For entry, never the leftmost.
	ClientIP netip.Addr
	// RequestID is the request's X-Request-ID, kept or generated.
	RequestID []byte
	// Route is the matched route's name.
	Route string

	x *exchange // nil for a Request made outside the gateway (tests)
}

// Consumer is who a request comes from, as authentication established it.
// Consumers are built once per config (never per request) and shared;
// they must not be modified.
type Consumer struct {
	// Name identifies the consumer in logs, metrics and upstream headers.
	Name string
	// Groups are the consumer's groups, for authorization.
	Groups []string
	// Index is the consumer's position in the config's consumers list, or
	// -1 for a consumer the config does not list (a JWT subject). Filters
	// index per-consumer state by it (rate-limit overrides).
	Index int
}

// Param returns the value of the route's path parameter name ("id" of
// "/users/{id}"), decoded, or nil when the route has no such parameter.
// The slice is valid for the request's life. Build-time code should
// resolve names once with Env.ParamIndex and use ParamAt.
func (r *Request) Param(name string) []byte {
	if r.x == nil || r.x.route == nil {
		return nil
	}
	for i, p := range r.x.route.params {
		if p == name {
			return r.ParamAt(i)
		}
	}
	return nil
}

// ParamAt returns the value of the i-th path parameter, in template order.
func (r *Request) ParamAt(i int) []byte {
	if r.x == nil {
		return nil
	}
	return r.x.param(i)
}

// Path returns the request's normalized path as the client sent it, before
// any rewrite. It is valid for the request's life.
func (r *Request) Path() []byte {
	if r.x == nil {
		return nil
	}
	return r.x.path
}

// Call returns the request's own upstream call, for a terminal that calls
// one upstream with Upstream.Do or Invoke (the proxy's is it too): the
// access log reports its upstream and target, and the gateway observes its
// latency at the request's end with the request's one clock read. It is
// valid for the request's life and zero at its start.
func (r *Request) Call() *Call { return &r.x.call }

// Consumer returns the consumer authentication set, or nil.
func (r *Request) Consumer() *Consumer {
	if r.x == nil {
		return nil
	}
	return r.x.consumer
}

// SetConsumer sets the request's consumer. It is written to the access
// log. c must outlive the request (build consumers once per config).
func (r *Request) SetConsumer(c *Consumer) { r.x.consumer = c }

// State returns the state the running filter stored with SetState, or
// nil. Each filter of a route owns one slot, its position in the chain,
// fixed when the route is compiled; Filter, After and Done of the same
// filter see the same slot.
func (r *Request) State() any { return r.x.state[r.x.slot] }

// SetState stores the running filter's per-request state. A pointer
// stored in an interface does not allocate; pool what it points to and
// release it in Done, which always runs for a filter that passed.
func (r *Request) SetState(v any) { r.x.state[r.x.slot] = v }

// LogField adds a field to the request's access-log line: key must be a
// constant JSON-safe name, value is written as a JSON string. It costs
// nothing when the request is not sampled into the log.
func (r *Request) LogField(key string, value []byte) {
	x := r.x
	if !x.logged {
		return
	}
	x.logExtra = append(x.logExtra, ',', '"')
	x.logExtra = append(x.logExtra, key...)
	x.logExtra = append(x.logExtra, '"', ':')
	x.logExtra = accesslog.AppendString(x.logExtra, value)
}

// Fail replaces the response with the gateway's JSON error for e, with
// the request id. A filter that returns false after Fail has answered.
func (r *Request) Fail(ctx *fasthttp.RequestCtx, e *Error) {
	WriteError(&ctx.Response, e, r.RequestID)
}

// TeeBody makes w receive a copy of the response body as it is streamed to
// the client, for a streamed response (a large or chunked upstream body).
// It returns false when the response is not streamed (its body is in
// ctx.Response already) or another filter has the tee. w must not block;
// a failed write drops the tee for the rest of the body, and Done then
// sees BodyErr report it.
func (r *Request) TeeBody(w io.Writer) bool {
	x := r.x
	if !x.streamed || x.tee != nil {
		return false
	}
	x.tee = w
	return true
}

// BodyErr reports, in Done, why the response body was not completely
// written to the client (the client went away, the upstream failed
// mid-body, a tee failed); nil when it was.
func (r *Request) BodyErr() error { return r.x.bodyErr }

// teeBody copies a streamed chunk to the tee; a failed write drops it.
func (x *exchange) teeBody(p []byte) {
	if x.tee == nil {
		return
	}
	if _, err := x.tee.Write(p); err != nil {
		x.tee = nil
		if x.bodyErr == nil {
			x.bodyErr = err
		}
	}
}
