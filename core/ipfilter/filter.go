package ipfilter

import (
	"net/netip"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"fastgate/core"
)

// Filter refuses clients that the route's deny rules hold or that an allow
// list (the top-level one, the route's) lacks. It is immutable and safe
// for concurrent use; it allocates nothing per request.
type Filter struct {
	// allow: the client must be in every one (top-level, route); none:
	// every client not denied.
	allow []*Table
	// deny is the top-level and route deny lists merged; nil: none.
	deny   *Table
	denied *metrics.Counter
}

var _ core.Filter = (*Filter)(nil)

// Filter admits the request or answers 403.
func (f *Filter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	if f.Admits(r.ClientIP) {
		return true
	}
	f.denied.Inc()
	r.Fail(ctx, errDenied)
	return false
}

// Admits reports whether the rules admit client ip. Deny wins; an invalid
// ip is admitted only when there is no allow list.
func (f *Filter) Admits(ip netip.Addr) bool {
	if f.deny != nil && f.deny.Contains(ip) {
		return false
	}
	for _, t := range f.allow {
		if !t.Contains(ip) {
			return false
		}
	}
	return true
}
