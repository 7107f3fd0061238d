package redis

import (
	"testing"

	"github.com/redis/rueidis"

	"fastgate/limiter/redis/redistest"
)

// startRedis starts a real redis-server for one test (see redistest).
func startRedis(t testing.TB) *redistest.Server { return redistest.Start(t) }

func newClient(t testing.TB, addr string) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("rueidis.NewClient(%s): %s", addr, err)
	}
	t.Cleanup(c.Close)
	return c
}
