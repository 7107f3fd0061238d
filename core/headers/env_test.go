package headers

import (
	"testing"

	"fastgate/core"
	"fastgate/core/config"
)

// envFor is the Env of c's first route, for builders that read only
// Config and Route.
func envFor(t testing.TB, c *config.Config) *core.Env {
	t.Helper()
	return &core.Env{Config: c, Route: c.Routes[0]}
}
