package core

import (
	"io"
	"net/netip"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

// Filter is one step of a route's chain, run in order after the route
// matched and before the terminal proxy (design.md §3: ipfilter -> cors ->
// auth -> ratelimit -> cache). Filters are built once per snapshot and
// called concurrently; they must not allocate per request.
type Filter interface {
	// Filter handles one request. It returns true to go on with the chain,
	// or false when it has written the response itself (a 429, a 401) and
	// the request must not reach the upstream.
	Filter(ctx *fasthttp.RequestCtx, r *Request) bool
}

// AfterFilter is a Filter with a response phase: After runs once the
// response is in ctx (or the gateway's error is), in reverse chain order,
// for every filter whose Filter returned true. Concurrency limits release
// their slot there; caches store. Whether a Filter has it is asserted once
// when the route is compiled.
type AfterFilter interface {
	Filter
	After(ctx *fasthttp.RequestCtx, r *Request)
}

// Request is what a filter may read about the request beyond ctx. It is
// valid only during the Filter call and must not be kept.
type Request struct {
	// ClientIP is the client's address: the peer, or past trusted proxies
	// the rightmost untrusted X-Forwarded-For entry, never the leftmost.
	ClientIP netip.Addr
	// RequestID is the request's X-Request-ID, kept or generated.
	RequestID []byte
	// Route is the matched route's name.
	Route string
}

// FilterBuilder makes a route's filter of one kind (rate limit, auth, ...)
// for every compiled config, including the one -check validates. Builders
// are given in chain order in Options.Filters.
//
// A builder may hand the same Filter to successive snapshots (to keep
// limiter state across reloads). A Filter that is an io.Closer is closed
// when the last snapshot using it has drained.
type FilterBuilder interface {
	// Build returns the filter of route rc of cfg, or nil when the route
	// has none of this kind. Errors name what to change; core prefixes them
	// with the route's path ("routes[2]: ...").
	Build(cfg *config.Config, rc *config.Route, set *metrics.Set) (Filter, error)
}

// runFilters runs r's chain; false means a filter answered the request.
// passed counts the filters that let the request through, for runAfter.
func (r *route) runFilters(ctx *fasthttp.RequestCtx, req *Request) (ok bool, passed int) {
	for i, f := range r.filters {
		if !f.Filter(ctx, req) {
			return false, i
		}
	}
	return true, len(r.filters)
}

// runAfter runs the response phase of the first passed filters, last first.
func (r *route) runAfter(ctx *fasthttp.RequestCtx, req *Request, passed int) {
	if !r.hasAfter {
		return
	}
	for i := passed - 1; i >= 0; i-- {
		if a, ok := r.filters[i].(AfterFilter); ok {
			a.After(ctx, req)
		}
	}
}

// closeFilters closes the filters of s that next does not use.
func (s *Snapshot) closeFilters(next *Snapshot) {
	for _, r := range s.routes {
		for _, f := range r.filters {
			c, ok := f.(io.Closer)
			if ok && (next == nil || !next.usesFilter(f)) {
				c.Close()
			}
		}
	}
}

func (s *Snapshot) usesFilter(f Filter) bool {
	for _, r := range s.routes {
		for _, g := range r.filters {
			if g == f {
				return true
			}
		}
	}
	return false
}
