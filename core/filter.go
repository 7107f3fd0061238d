package core

import (
	"github.com/valyala/fasthttp"
)

// A route is a match, a chain of filters and one terminal (Envoy's filter
// chain with the router as its terminal filter):
//
//	ipfilter -> cors -> auth -> ratelimit -> cache -> terminal (proxy | static | redirect | ...)
//	                    response phase, in reverse: After, then Done
//
// Filters and terminals are built once per snapshot by the builders in
// Options (see feature.go) and called concurrently; they must not allocate
// per request.

// Filter is one step of a route's chain, run in order after the route
// matched and before its terminal.
type Filter interface {
	// Filter handles one request. It returns true to go on with the chain,
	// or false when it has written the response itself (a 429, a 401) and
	// the request must not reach the terminal.
	Filter(ctx *fasthttp.RequestCtx, r *Request) bool
}

// AfterFilter is a Filter with a response phase that may change the
// response: After runs once the terminal has put the response (or the
// gateway's error) in ctx and before it is written, in reverse chain
// order, for every filter whose Filter returned true, also when a later
// step panicked. A streamed body has not been read yet (see
// Request.TeeBody). Headers set here reach the client.
type AfterFilter interface {
	Filter
	After(ctx *fasthttp.RequestCtx, r *Request)
}

// DoneFilter is a Filter told when the request is over: Done runs once the
// whole response, a streamed body included, has been written to the
// client (or that failed, see Request.BodyErr), in reverse chain order,
// for every filter whose Filter returned true, whatever happened after.
// Slots (a concurrency limit's) are released here, so they are held for a
// whole download; a cache stores a teed body here. The response can no
// longer be changed.
type DoneFilter interface {
	Filter
	Done(ctx *fasthttp.RequestCtx, r *Request)
}

// Terminal answers a request that passed its route's filters: the proxy to
// an upstream, a static response, a redirect; later aggregation and
// protocol translation. It leaves the response in ctx.Response (or as a
// body stream, see Request.TeeBody) and never panics on bad input: a bad
// request gets a 4xx through Request.Fail.
type Terminal interface {
	Serve(ctx *fasthttp.RequestCtx, r *Request)
}

// runFilters runs r's chain and reports whether the request reached the
// end. Each filter that lets the request through is counted at once, so a
// panic further on still runs its response phase.
func (x *exchange) runFilters(ctx *fasthttp.RequestCtx, r *route) bool {
	for i := x.first; i < len(r.filters); i++ {
		x.slot = i
		if !r.filters[i].Filter(ctx, &x.req) {
			return false
		}
		x.passed = i + 1
	}
	return true
}

// runAfter runs the After phase of the passed filters, last first. A
// panicking After is logged and the others still run.
func (x *exchange) runAfter() {
	r := x.route
	if r == nil || !r.hasAfter {
		return
	}
	for i := x.passed - 1; i >= x.first; i-- {
		if a := r.after[i]; a != nil {
			x.afterOne(a, i)
		}
	}
}

func (x *exchange) afterOne(a AfterFilter, i int) {
	defer x.recoverFilter()
	x.slot = i
	a.After(x.ctx, &x.req)
}

// runDone runs the Done phase of the passed filters, last first; like
// runAfter, a panic in one does not skip the others.
func (x *exchange) runDone() {
	r := x.route
	if r == nil || !r.hasDone {
		return
	}
	for i := x.passed - 1; i >= x.first; i-- {
		if d := r.done[i]; d != nil {
			x.doneOne(d, i)
		}
	}
}

func (x *exchange) doneOne(d DoneFilter, i int) {
	defer x.recoverFilter()
	x.slot = i
	d.Done(x.ctx, &x.req)
}

func (x *exchange) recoverFilter() {
	if p := recover(); p != nil {
		x.snap.logPanic(p, x)
	}
}
