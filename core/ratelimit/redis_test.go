package ratelimit

import (
	"testing"

	"fastgate/limiter/redis/redistest"
)

// startRedis starts a real redis-server for one test (see redistest).
func startRedis(t testing.TB) *redistest.Server { return redistest.Start(t) }
