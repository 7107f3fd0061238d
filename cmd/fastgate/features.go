package main

import (
	"log/slog"

	"fastgate/core"
	"fastgate/core/aggregate"
	"fastgate/core/auth"
	"fastgate/core/cache"
	"fastgate/core/cors"
	"fastgate/core/grpc"
	"fastgate/core/headers"
	"fastgate/core/ipfilter"
	"fastgate/core/ratelimit"
	"fastgate/core/redirect"
	"fastgate/core/soap"
	"fastgate/core/static"
)

// features registers the gateway's features: the route filter builders in
// chain order (design §3: ipfilter -> cors -> auth -> ratelimit -> cache; security
// headers first so that their response phase, which runs in reverse, also
// marks the answers of later filters; the header transforms last, so
// their response side runs first on the way back) and
// the terminals beside core's proxy. cleanup closes what the builders hold
// (the Redis client, JWKS refreshes); call it after the gateway has shut
// down. core.Compile (-check, and vetting a reload) only validates with
// them: no limiter state, no Redis connection, no JWKS fetch.
func features(log *slog.Logger) (o core.Options, c *cache.Builder, cleanup func()) {
	rl := ratelimit.NewBuilder(ratelimit.Options{Logger: log})
	au := auth.NewBuilder(auth.Options{Logger: log})
	c = cache.NewBuilder(cache.Options{Logger: log})
	o.Filters = []core.FilterBuilder{headers.Security{}, ipfilter.Builder{}, cors.Builder{}, au, rl, c, headers.Transforms{}}
	gb := &grpc.Builder{}
	o.Terminals = []core.TerminalBuilder{static.Builder{}, redirect.Builder{}, aggregate.Builder{}, gb, &soap.Builder{}}
	o.Unrouted = headers.Unrouted
	return o, c, func() {
		rl.Close()
		au.Close()
		c.Close()
		gb.Close()
	}
}
