package core

// Read-only accessors over the gateway's internals for the admin
// dashboard (core/admin/stats.go). They run off the request path, about
// once a second while someone watches the dashboard.

// RouteInFlight adds to dst, by route name, the requests that are in an
// upstream call now (proxied, aggregated, translated), and returns dst.
// It walks the client watchdog's registry, which every request joins when
// its first upstream attempt starts and leaves when it completes, taking
// each shard's lock briefly; requests answered without an upstream (cache
// hits, static files, a filter's refusal) are not counted. A nil dst is
// allocated. It is safe for concurrent use.
func (g *Gateway) RouteInFlight(dst map[string]int64) map[string]int64 {
	if dst == nil {
		dst = make(map[string]int64)
	}
	w := g.watch
	if w == nil {
		return dst
	}
	for i := range w.shards {
		sh := &w.shards[i]
		sh.mu.Lock()
		for x := sh.head; x != nil; x = x.cancel.next {
			// Registered exchanges are being served: their route was set
			// before their first upstream call, under this lock's
			// happens-before edge.
			if x.route != nil {
				dst[x.route.name]++
			}
		}
		sh.mu.Unlock()
	}
	return dst
}
