package config

import (
	"strings"
	"testing"
)

func TestResilienceValidate(t *testing.T) {
	f := func(upstream string, want ...string) {
		t.Helper()
		// decoding and validation problems together, decoding first
		_, err := ParseChecked([]byte("upstreams:\n  u: "+upstream+"\nroutes: [{upstream: u}]\n"), "yaml", noEnv, nil)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != strings.Join(want, "\n") {
			t.Fatalf("Validate(%s):\ngot  %s\nwant %s", upstream, got, strings.Join(want, "\n"))
		}
	}
	const tg = `targets: [{url: "http://a:1"}]`
	f(`{balancer: p2c_ewma, ` + tg + `}`)
	f(`{balancer: consistent_hash, hash: {key: "header:X-User-ID", bounded_load: 1.25}, ` + tg + `}`)
	f(`{balancer: ring, hash: {key: ip}, ` + tg + `}`)
	f(`{balancer: consistent_hash, hash: {key: "cookie:"}, `+tg+`}`,
		`upstreams.u.hash.key: "cookie:" needs a name, such as "cookie:session"`)
	f(`{balancer: maglev, hash: {key: "ip:x", bounded_load: 0.5, algorithm: ring}, `+tg+`}`,
		`upstreams.u.hash.key: "ip:x" takes no name; write "ip"`,
		`upstreams.u.hash.bounded_load: must be 0 (off) or at least 1, such as 1.25; got 0.5`,
		`upstreams.u.hash.algorithm: "ring" contradicts balancer "maglev"; use balancer: consistent_hash with hash.algorithm`)
	f(`{retries: {on: [connect_error, reset, timeout, 502, "503", 5xx, 4XX, " 429 "]}, health: {passive: {on_status: [500, "502", 5xx]}}, ` + tg + `}`)
	f(`{retries: {attempts: 11, budget: 2, on: [timeout, "302", gateway_error, 6xx, Timeout], backoff: {base: 1s, max: 10ms}}, `+tg+`}`,
		`upstreams.u.retries.attempts: must be 1 (no retries) to 10, got 11`,
		`upstreams.u.retries.budget: must be a share in (0, 1], such as 0.2; got 2`,
		`upstreams.u.retries.on[1]: "302" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[2]: "gateway_error" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[3]: "6xx" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[4]: "Timeout" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.backoff.max: 10ms is below base 1s; raise max or lower base`)
	f(`{health: {active: {path: healthz, expected_status: "2xx", healthy: -1}, passive: {consecutive_failures: -1, max_ejection_percent: 101, on_status: [200]}, panic_threshold: 101}, `+tg+`}`,
		`upstreams.u.health.passive.on_status[0]: "200" is not a status (400-599) or a class (4xx, 5xx)`,
		`upstreams.u.health.panic_threshold: must be a percentage 1-100, or -1 to disable panic mode; got 101`,
		`upstreams.u.health.active.path: "healthz" must start with "/", such as "/healthz"`,
		`upstreams.u.health.active.expected_status: "2xx" is not a status range; write one such as "200-399" or "200"`,
		`upstreams.u.health.active.healthy: must be >= 1, got -1`,
		`upstreams.u.health.passive.consecutive_failures: must be >= 0 (0 turns ejection off), got -1`,
		`upstreams.u.health.passive.max_ejection_percent: must be 1-100, got 101`)
	f(`{circuit_breaker: {max_requests: -1}, `+tg+`}`,
		`upstreams.u.circuit_breaker.max_requests: must be >= 0 (0 means unlimited), got -1`)
}

func TestResilienceDefaults(t *testing.T) {
	c := mustParse(t, `
upstreams:
  u: {balancer: ring, hash: {key: path}, targets: [{url: "http://a:1"}], retries: {on: []}, health: {passive: {consecutive_failures: 0}}}
routes: [{upstream: u}]
`, "yaml")
	c.SetDefaults(nil)
	u := c.Upstreams["u"]
	if u.Hash.Algorithm != HashRing || len(u.Retries.On) != 0 || *u.Health.Passive.ConsecutiveFailures != 0 || u.Retries.Attempts != 2 {
		t.Fatalf("defaults: hash %+v, retries %+v, consecutive_failures %d; want ring, on [] kept, 0 kept, attempts 2",
			u.Hash, u.Retries, *u.Health.Passive.ConsecutiveFailures)
	}
}

// FuzzParseHashKey: any string parses or fails without a panic, and a
// parsed key written back parses to the same source and name.
func FuzzParseHashKey(f *testing.F) {
	for _, s := range []string{"ip", "path", "header:X-User-ID", "cookie:session", "query:user", "header:", "ip:x", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		source, name, err := ParseHashKey(s)
		if err != nil {
			return
		}
		back := source
		if name != "" {
			back += ":" + name
		}
		s2, n2, err := ParseHashKey(back)
		if err != nil || s2 != source || n2 != name {
			t.Fatalf("ParseHashKey(%q) = %q, %q; written back %q gives %q, %q, %v", s, source, name, back, s2, n2, err)
		}
	})
}
