// Package discovery finds upstream targets at run time (design.md §4):
// DNS A/AAAA and SRV records, an etcd key prefix watched for changes, or a
// watched file. Each upstream with a discovery block gets one source; every
// answer it gives replaces the upstream's target set through Updater (the
// gateway's SetTargets: one validated snapshot swap that keeps balancing
// state, pools and health by address). A source that fails keeps the last
// good set, logs and counts the failure; an empty answer keeps it too
// unless allow_empty.
package discovery

import (
	"context"

	"fastgate/core/config"
)

// Updater applies a discovered target set to an upstream: the gateway's
// SetTargets. source names the discovery type ("dns", "etcd", "file").
type Updater interface {
	SetTargets(upstream string, targets []config.Target, source string) error
}

// Source finds one upstream's targets. Run calls emit with every new
// complete target set (not deltas) until ctx ends, and report with every
// failure (nil after a success following a failure); it returns when ctx
// ends. A Source retries on its own, with backoff, and never gives up
// while ctx lives.
type Source interface {
	Run(ctx context.Context, emit func([]config.Target), report func(error))
}
