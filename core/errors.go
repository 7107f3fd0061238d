package core

import (
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"
)

// Error is an error that becomes a response with Status. The gateway's own
// error responses are JSON: {"error":"...","status":502,"request_id":"..."}.
type Error struct {
	Status int
	Err    error
}

// Error implements error.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errors the request path answers with. Their texts are JSON-safe and are
// written as they are into error bodies.
var (
	errNoRoute          = &Error{fasthttp.StatusNotFound, errors.New("no route matches the request")}
	errMethodNotAllowed = &Error{fasthttp.StatusMethodNotAllowed, errors.New("method not allowed on this route")}
	errBadRequest       = &Error{fasthttp.StatusBadRequest, errors.New("malformed request")}
	errUpstreamConnect  = &Error{fasthttp.StatusBadGateway, errors.New("upstream connection failed")}
	errUpstreamReset    = &Error{fasthttp.StatusBadGateway, errors.New("upstream closed the connection before responding")}
	errUpstreamBadResp  = &Error{fasthttp.StatusBadGateway, errors.New("upstream sent an invalid response")}
	errUpstreamTooLarge = &Error{fasthttp.StatusBadGateway, errors.New("upstream response body too large")}
	errUpstreamTimeout  = &Error{fasthttp.StatusGatewayTimeout, errors.New("upstream timed out")}
	errPoolExhausted    = &Error{fasthttp.StatusServiceUnavailable, errors.New("upstream connection pool exhausted")}
	errInternal         = &Error{fasthttp.StatusInternalServerError, errors.New("internal gateway error")}
	errNoTarget         = &Error{fasthttp.StatusServiceUnavailable, errors.New("no healthy target in the upstream")}
	// The circuit breaker's answers carry Retry-After: 1.
	errBreakerOpen    = &Error{fasthttp.StatusServiceUnavailable, errors.New("upstream circuit breaker open: too many requests in flight (circuit_breaker.max_requests)")}
	errBreakerPending = &Error{fasthttp.StatusServiceUnavailable, errors.New("upstream circuit breaker open: too many requests waiting for a connection (circuit_breaker.max_pending)")}
	// errClientGone ends an upstream call whose client went away; nginx's
	// 499, which only metrics and the access log see.
	errClientGone     = &Error{StatusClientClosedRequest, errors.New("client closed the request")}
	errBodyTooLarge   = &Error{fasthttp.StatusRequestEntityTooLarge, errors.New("request body too large")}
	errHeaderTooLarge = &Error{fasthttp.StatusRequestHeaderFieldsTooLarge, errors.New("request header too large")}
	errRequestTimeout = &Error{fasthttp.StatusRequestTimeout, errors.New("request timed out")}
)

// StatusClientClosedRequest is nginx's 499: the client closed the
// connection before the response was ready.
const StatusClientClosedRequest = 499

var (
	strContentTypeJSON = []byte("application/json")
	strXRequestID      = "X-Request-ID"
)

// WriteError replaces the response with e as the gateway's JSON error body,
// {"error":"...","status":502,"request_id":"..."}, the one writer of every
// error the gateway and its features answer with. e.Err's text must be
// JSON-safe (define errors once, with plain text); requestID is the
// request's (Request.RequestID), which the gateway keeps JSON-safe. It
// allocates nothing.
func WriteError(resp *fasthttp.Response, e *Error, requestID []byte) {
	resp.Reset()
	resp.SetStatusCode(e.Status)
	resp.Header.SetContentTypeBytes(strContentTypeJSON)
	if len(requestID) > 0 {
		resp.Header.SetBytesV(strXRequestID, requestID)
	}
	var num [8]byte
	resp.AppendBodyString(`{"error":"`)
	resp.AppendBodyString(e.Err.Error())
	resp.AppendBodyString(`","status":`)
	resp.AppendBody(strconv.AppendInt(num[:0], int64(e.Status), 10))
	resp.AppendBodyString(`,"request_id":"`)
	resp.AppendBody(requestID)
	resp.AppendBodyString("\"}\n")
}
