package main

import (
	"log/slog"

	"fastgate/core"
	"fastgate/core/ratelimit"
	"fastgate/core/redirect"
	"fastgate/core/static"
)

// features registers the gateway's features: the route filter builders in
// chain order (design §3: ipfilter -> cors -> auth -> ratelimit -> cache)
// and the terminals beside core's proxy. cleanup closes what the builders
// hold (the Redis client); call it after the gateway has shut down.
// core.Compile (-check, and vetting a reload) only validates with them:
// no limiter state, no Redis connection.
func features(log *slog.Logger) (o core.Options, cleanup func()) {
	rl := ratelimit.NewBuilder(ratelimit.Options{Logger: log})
	o.Filters = []core.FilterBuilder{rl}
	o.Terminals = []core.TerminalBuilder{static.Builder{}, redirect.Builder{}}
	return o, rl.Close
}
