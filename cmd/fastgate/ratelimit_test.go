package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestRateLimitRedisDown: -check validates global limits without
// connecting; a gateway whose Redis is down starts, fails open by default
// and closed when asked, and answers 429 with the JSON body.
func TestRateLimitRedisDown(t *testing.T) {
	up := startUpstream(t, "rl")
	dead := freePort(t) // nothing listens there
	g := startGateway(t, fmt.Sprintf(`
redis: {address: %q, timeout: 50ms}
upstreams:
  rl: {targets: [{url: "{{rl}}"}]}
routes:
  - {name: open, match: {path: /open}, upstream: rl, rate_limit: {rate: 1, per: 1h, scope: global, mode: exact}}
  - {name: closed, match: {path: /closed}, upstream: rl, rate_limit: {rate: 100, scope: global, mode: exact, on_redis_error: closed}}
`, dead), up)
	for i := 0; i < 3; i++ { // fail-open admits past the limit of 1
		if r := g.get(t, "/open"); r.status != 200 {
			t.Fatalf("fail-open request %d: status %d; want 200", i, r.status)
		}
	}
	r := g.get(t, "/closed")
	checkGatewayError(t, "fail-closed", r, 429)
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("fail-closed: Retry-After %q; want 1", r.header.Get("Retry-After"))
	}
	var out, errb strings.Builder
	path := writeConfig(t, fmt.Sprintf(`
redis: {address: %q}
upstreams:
  rl: {targets: [{url: "http://127.0.0.1:1"}]}
routes:
  - {upstream: rl, rate_limit: {rate: 1, scope: global}}
`, dead))
	if code := run([]string{"-check", "-config", path}, &out, &errb); code != 0 {
		t.Fatalf("-check with Redis down: exit %d; want 0; stderr %s", code, errb.String())
	}
}
