package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestRateLimitDecodeForms(t *testing.T) {
	f := func(route, top string, want, wantTop RateLimits) {
		t.Helper()
		data := validBase + top + "routes: [{upstream: users" + route + "}]"
		c := mustParse(t, data, "yaml")
		c.SetDefaults(nil)
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate(%s): %s", data, err)
		}
		if got := c.Routes[0].RateLimit; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: route rate_limit got %#v; want %#v", route, got, want)
		}
		if got := c.RateLimit; !reflect.DeepEqual(got, wantTop) {
			t.Fatalf("%s: top rate_limit got %#v; want %#v", top, got, wantTop)
		}
	}
	ip := func(name string, rate int, per time.Duration) RateLimit {
		return RateLimit{Name: name, Rate: rate, Per: Duration(per), Burst: rate, Key: KeyIP, Scope: ScopeLocal, Headers: HeadersIETF}
	}
	f("", "", nil, nil)
	f(", rate_limit: {rate: 10}", "", RateLimits{ip("10-per-1s", 10, time.Second)}, nil)
	f(", rate_limit: [{rate: 10}, {rate: 1000, per: 1h}]", "",
		RateLimits{ip("10-per-1s", 10, time.Second), ip("1000-per-1h", 1000, time.Hour)}, nil)
	f(", rate_limit: off", "rate_limit: {rate: 5, per: 1m30s}\n", RateLimits{}, RateLimits{ip("5-per-1m30s", 5, 90*time.Second)})
	f(", rate_limit: []", "", RateLimits{}, nil)
	g := RateLimit{Name: "api", Rate: 1000, Per: Duration(time.Second), Burst: 50, Key: "ip+header:X-Tenant",
		Scope: ScopeGlobal, Mode: ModeHybrid, OnRedisError: RedisErrOpen, Headers: HeadersBoth}
	f(", rate_limit: {name: api, rate: 1000, burst: 50, key: ip+header:X-Tenant, scope: global, headers: both}",
		"redis: {address: \"127.0.0.1:6379\"}\n", RateLimits{g}, nil)

	// JSON, and the clone (GET /config) keeps absent, off and the list apart
	c := mustParse(t, `{"upstreams": {"u": {"targets": [{"url": "http://127.0.0.1:1"}]}},
	  "redis": {"address": "127.0.0.1:6379", "password": "s3cret"},
	  "rate_limit": {"rate": 3},
	  "routes": [{"upstream": "u", "match": {"path": "/a"}}, {"upstream": "u", "match": {"path": "/b"}, "rate_limit": "off"},
	             {"upstream": "u", "match": {"path": "/c"}, "rate_limit": [{"rate": 1}]}]}`, "json")
	c.SetDefaults(nil)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	if r.Redis.Password != Redacted || c.Redis.Password != "s3cret" {
		t.Fatalf("Redacted: redis.password got %q (original %q); want %q (original unchanged)", r.Redis.Password, c.Redis.Password, Redacted)
	}
	for i, want := range []int{3, 0, 1} {
		ls := r.RouteRateLimits(r.Routes[i])
		got := 0
		if len(ls) > 0 {
			got = ls[0].Rate
		}
		if got != want || (i == 1) != (r.Routes[i].RateLimit != nil && len(r.Routes[i].RateLimit) == 0) {
			t.Fatalf("routes[%d] after clone: rate %d (rate_limit %#v); want %d", i, got, r.Routes[i].RateLimit, want)
		}
	}
}

func TestRateLimitErrors(t *testing.T) {
	f := func(data string, want ...string) {
		t.Helper()
		c, err := ParseChecked([]byte(validBase+data), "yaml", nil, nil)
		if err == nil {
			t.Fatalf("ParseChecked(%s): no error (config %+v); want %q", data, c, want)
		}
		got := err.Error()
		if got != strings.Join(want, "\n") {
			t.Fatalf("ParseChecked(%s):\ngot:\n%s\nwant:\n%s", data, got, strings.Join(want, "\n"))
		}
	}
	f("routes: [{upstream: users, rate_limit: {rate: 0}}]",
		"routes[0].rate_limit.rate: must be > 0 (requests per `per`), got 0")
	f("routes: [{upstream: users, rate_limit: [{rate: 1}, {rate: -2, burst: -1}]}]",
		"routes[0].rate_limit[1].rate: must be > 0 (requests per `per`), got -2",
		"routes[0].rate_limit[1].burst: must be >= 0 (0 means rate), got -1")
	f("routes: [{upstream: users, rate_limit: {rate: 10, per: 5ns}}]",
		"routes[0].rate_limit.per: rate 10 per 5ns is above one request per nanosecond; raise per or lower rate")
	f("routes: [{upstream: users, rate_limit: [{rate: 10}, {rate: 10}]}]",
		`routes[0].rate_limit[1].name: "10-per-1s" is also the name of routes[0].rate_limit[0]; set name to tell them apart (it names the limit in RateLimit headers and Redis keys)`)
	f("routes: [{upstream: users, rate_limit: {rate: 1, key: consumer}}]",
		`routes[0].rate_limit.key: "consumer" needs the route to authenticate its requests; add auth (such as auth: {any_of: [api_key]}) or key by "ip"`)
	f("routes: [{upstream: users, rate_limit: {rate: 1, key: \"ip+header:\"}}]",
		`routes[0].rate_limit.key: "header:": the header name must be a token, such as "header:X-Tenant"`)
	f("routes: [{upstream: users, rate_limit: {rate: 1, key: ip+route}}]",
		`routes[0].rate_limit.key: "ip+route": "route" can't be combined: every route has its own buckets already, so drop it`)
	f("routes: [{upstream: users, rate_limit: {rate: 1, key: ip+ip}}]",
		`routes[0].rate_limit.key: "ip+ip" lists "ip" twice; keep one`)
	f("routes: [{upstream: users, rate_limit: {rate: 1, key: ipp}}]",
		`routes[0].rate_limit.key: unknown key part "ipp" (known: ip, route, consumer, header:NAME, and combinations joined by '+'); did you mean "ip"?`)
	f("routes: [{upstream: users, rate_limit: {rate: 1, scope: globl, headers: xyz}}]",
		`routes[0].rate_limit.scope: unknown value "globl" (known: local, global); did you mean "global"?`,
		`routes[0].rate_limit.headers: unknown value "xyz" (known: ietf, legacy, both, none)`)
	f("routes: [{upstream: users, rate_limit: {rate: 1, mode: exact, on_redis_error: closed}}]",
		`routes[0].rate_limit.mode: "exact" applies to scope: global only; remove it or set scope: global`,
		`routes[0].rate_limit.on_redis_error: "closed" applies to scope: global only; remove it or set scope: global`)
	f("routes: [{upstream: users, rate_limit: {rate: 1, scope: global, mode: exakt}}]",
		`routes[0].rate_limit.mode: unknown value "exakt" (known: hybrid, exact); did you mean "exact"?`,
		`redis.address: required: routes[0].rate_limit.scope is "global", which shares the limit through Redis; set redis: {address: "127.0.0.1:6379"}, or scope: local`)
	f("rate_limit: {rate: 1, scope: global}\nredis: {address: nope, db: -1}\nroutes: [{upstream: users}]",
		`redis.address: want "host:port" such as ":8080" or "127.0.0.1:8080", got "nope"`,
		`redis.db: must be >= 0, got -1`)
	f("rate_limit: {rate: 1, scope: global, per: 100ns}\nredis: {address: \"127.0.0.1:6379\"}\nroutes: [{upstream: users}]",
		`rate_limit.per: rate 1 per 100ns is above one request per microsecond; raise per or lower rate`)
	f("routes: [{upstream: users, rate_limit: on}]",
		`routes[0].rate_limit: want a mapping such as {rate: 100, per: 1s}, a list of them, or "off", got string "on"`)
	f("routes: [{upstream: users, rate_limit: {rate: 1, rat: 2}}]",
		`routes[0].rate_limit.rat: unknown field "rat" (known: name, rate, per, burst, key, scope, mode, on_redis_error, headers, max_keys); did you mean "rate"?`)
	f("routes: [{upstream: users, concurrency: {max: 0, queue: 5}}]",
		"routes[0].concurrency.max: must be > 0 (requests in flight at once), got 0",
		`routes[0].concurrency.wait: queue 5 needs a wait > 0, such as "100ms": how long a queued request waits for a slot`)
	f("routes: [{upstream: users, concurrency: {max: 1, queue: 1, wait: 1s, key: ip, status: 500}}]",
		"routes[0].concurrency.queue: a queue works per route only; remove key, or the queue",
		"routes[0].concurrency.status: want 503 or 429, got 500")
	f("routes: [{upstream: users, concurrency: {max: 1, key: route}}]",
		`routes[0].concurrency.key: "route" is what an absent key means; remove it`)
}

func TestParseKey(t *testing.T) {
	f := func(s string, want ...KeyPart) {
		t.Helper()
		got, err := ParseKey(s)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseKey(%q): got %v, %v; want %v", s, got, err, want)
		}
	}
	f("ip", KeyPart{Kind: KeyIP})
	f("route", KeyPart{Kind: KeyRoute})
	f("header:X-Tenant", KeyPart{Kind: KeyHeaderPfx, Header: "X-Tenant"})
	f("ip + header:X-A+header:X-B", KeyPart{Kind: KeyIP}, KeyPart{Kind: KeyHeaderPfx, Header: "X-A"}, KeyPart{Kind: KeyHeaderPfx, Header: "X-B"})
}

func TestPerString(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		if got := PerString(Duration(d)); got != want {
			t.Fatalf("PerString(%s): got %q; want %q", d, got, want)
		}
	}
	f(time.Second, "1s")
	f(time.Minute, "1m")
	f(time.Hour, "1h")
	f(90*time.Minute, "1h30m")
	f(250*time.Millisecond, "250ms")
	f(24*time.Hour, "24h")
}

// FuzzParseKey: any string parses or fails without a panic, and a parsed
// key written back from its parts parses to the same parts.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"ip", "route", "header:X-Tenant", "ip+header:X-Tenant", "ip+ip", "consumer", "header:", "+", "ip +header:a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts, err := ParseKey(s)
		if err != nil {
			return
		}
		var names []string
		for _, p := range parts {
			if p.Kind == KeyHeaderPfx {
				names = append(names, KeyHeaderPfx+p.Header)
			} else {
				names = append(names, p.Kind)
			}
		}
		again, err := ParseKey(strings.Join(names, "+"))
		if err != nil || !reflect.DeepEqual(again, parts) {
			t.Fatalf("ParseKey(%q) = %v; written back %q parses to %v, %v", s, parts, strings.Join(names, "+"), again, err)
		}
	})
}
