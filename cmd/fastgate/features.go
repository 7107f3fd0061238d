package main

import (
	"log/slog"

	"fastgate/core"
	"fastgate/core/ratelimit"
)

// filterBuilders returns the route filter builders in chain order (design
// §3: ipfilter -> cors -> auth -> ratelimit -> cache) and a cleanup that
// closes what they hold (the Redis client), to call after the gateway has
// shut down. With check, the builders validate only: no limiter state, no
// Redis connection; -check and the compile that vets a reload use those.
func filterBuilders(log *slog.Logger, check bool) ([]core.FilterBuilder, func()) {
	rl := ratelimit.NewBuilder(ratelimit.Options{Logger: log, Check: check})
	return []core.FilterBuilder{rl}, rl.Close
}
