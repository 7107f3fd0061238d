package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validBase is a valid config that the cases below add to.
const validBase = `
upstreams:
  users: {targets: [{url: "http://127.0.0.1:9001"}]}
  orders: {targets: [{url: "http://127.0.0.1:9002"}]}
`

func validate(t *testing.T, data string) error {
	t.Helper()
	c := mustParse(t, data, "yaml")
	c.SetDefaults(nil)
	return c.Validate()
}

// wantProblems checks that validBase+routes validates with exactly want,
// one problem per line, in order (none: valid).
func wantProblems(t *testing.T, routes string, want ...string) {
	t.Helper()
	err := validate(t, validBase+routes)
	got := ""
	if err != nil {
		got = err.Error()
	}
	if w := strings.Join(want, "\n"); got != w {
		t.Fatalf("Validate(%s):\ngot\n%s\nwant\n%s", routes, got, w)
	}
}

func TestValidateOK(t *testing.T) {
	f := func(data string) {
		t.Helper()
		if err := validate(t, data); err != nil {
			t.Fatalf("Validate(%s):\n%s", data, err)
		}
	}
	f(testYAML)
	f(testJSON)
	f(validBase + "routes: [{upstream: users}]")
	f(validBase + `
listen: "[::1]:0"
server: {trusted_proxies: ["::1", "fd00::/8", "127.0.0.1"], max_conns_per_ip: 0}
routes:
  - match: {path: /, hosts: [Example.COM, "*.a.example.com", 127.0.0.1], methods: [GET, M-SEARCH]}
    upstream: users
    rewrite: {host: "api.internal:8080"}
  - match: {path: "/a/{x}/", headers: {X-A: "1", Authorization: "k"}, query: {q: ""}}
    upstream: orders
    rewrite: {host: "[::1]:80", path: "/b/{x}?from=a&x={x}"}
  - match: {path: "/files/{f:*}"}
    upstream: orders
    rewrite: {host: "[::1]"}
    timeout: 0s
`)
	// different conditions, hosts, templates or methods: no route shadows another
	f(validBase + `
routes:
  - {match: {path: "/u/{id}"}, upstream: users}
  - {match: {path: "/u/{id}", methods: [GET]}, upstream: users}
  - {match: {path: "/u/{id}", methods: [POST]}, upstream: users}
  - {match: {path: "/u/{id}", methods: [GET, PUT]}, upstream: users}
  - {match: {path: "/u/{id}", headers: {X-V: "2"}}, upstream: users}
  - {match: {path: "/u/{id}", headers: {X-V: "3"}}, upstream: users}
  - {match: {path: "/u/{id}", query: {v: "3"}}, upstream: users}
  - {match: {path: "/u/{id}", hosts: [a.com]}, upstream: users}
  - {match: {path: "/u/{id}", hosts: [a.com, b.com]}, upstream: users}
  - {match: {path: "/u/{id}/"}, upstream: users}
  - {match: {path: "/u/{id:*}"}, upstream: users}
  - {match: {path: "/u/me"}, upstream: users}
`)
	// the weights and pool sizes given are kept
	f(`
upstreams:
  users: {targets: [{url: "http://a"}, {url: "http://a:81", weight: 0}], timeouts: {per_try: 30s, request: 30s}}
routes: [{upstream: users}]
`)
}

func TestValidateErrors(t *testing.T) {
	f := func(data string, want ...string) {
		t.Helper()
		err := validate(t, data)
		if err == nil {
			t.Fatalf("Validate(%s): got nil; want\n%s", data, strings.Join(want, "\n"))
		}
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("Validate: got error %T; want Errors", err)
		}
		if got := err.Error(); got != strings.Join(want, "\n") {
			t.Fatalf("Validate(%s):\ngot\n%s\nwant\n%s", data, got, strings.Join(want, "\n"))
		}
	}

	f("", "routes: at least one route is required, such as [{match: {path: \"/{path:*}\"}, upstream: NAME}]")

	// listen
	f(validBase+"listen: \"8080\"\nroutes: [{upstream: users}]",
		`listen: want "host:port" such as ":8080" or "127.0.0.1:8080", got "8080"`)
	f(validBase+"listen: \":http\"\nroutes: [{upstream: users}]",
		`listen: port "http" must be a number 0-65535`)
	f(validBase+"listen: \":65536\"\nroutes: [{upstream: users}]",
		`listen: port "65536" must be a number 0-65535`)

	// server
	f(validBase+`
server: {max_header_bytes: 512, max_conns_per_ip: -1, max_requests_per_conn: -2, concurrency: -3,
         trusted_proxies: ["10.0.0.0/8", "10.0.0.0/33", "localhost", ""]}
routes: [{upstream: users}]
`,
		`server.max_header_bytes: must be at least 1KiB, got 512B`,
		`server.concurrency: must be > 0, got -3`,
		`server.max_conns_per_ip: must be >= 0 (0 means unlimited), got -1`,
		`server.max_requests_per_conn: must be >= 0 (0 means unlimited), got -2`,
		`server.trusted_proxies[1]: "10.0.0.0/33" is not an IP or CIDR; write one such as "10.0.0.1" or "10.0.0.0/8"`,
		`server.trusted_proxies[2]: "localhost" is not an IP or CIDR; write one such as "10.0.0.1" or "10.0.0.0/8"`,
		`server.trusted_proxies[3]: "" is not an IP or CIDR; write one such as "10.0.0.1" or "10.0.0.0/8"`)

	// upstreams
	f(`
upstreams:
  "my svc": {targets: [{url: "http://a"}]}
  empty: null
  p2c: {balancer: p2c, targets: [{url: "http://a"}]}
  ch: {balancer: consistent_hash, targets: [{url: "http://a"}]}
  rr: {balancer: round_robbin, targets: [{url: "http://a"}]}
  none: {targets: []}
routes: [{upstream: none}]
`,
		`upstreams.ch.hash.key: required with balancer consistent_hash: say what to hash, such as "header:X-User-ID", "cookie:session", "query:user", "ip" or "path"`,
		`upstreams.empty: is empty; give it targets, such as targets: [{url: "http://127.0.0.1:9001"}]`,
		`upstreams["my svc"]: name "my svc" may only use letters, digits, '_', '.' and '-'`,
		`upstreams.none.targets: at least one target is required, such as [{url: "http://127.0.0.1:9001"}]`,
		`upstreams.rr.balancer: unknown balancer "round_robbin" (known: round_robin, weighted, random, least_conn, p2c, p2c_ewma, consistent_hash, maglev, ring); did you mean "round_robin"?`)

	// targets
	f(`
upstreams:
  u:
    targets:
      - {url: "http://10.0.0.1"}
      - {url: "https://10.0.0.1"}
      - {url: "http://10.0.0.1:443"}
      - {url: "10.0.0.1:80"}
      - {url: "localhost:8080"}
      - {url: "ftp://a"}
      - {url: "http://user:pw@a"}
      - {url: "http://a/api"}
      - {url: "http://a:8080/?x=1"}
      - {url: "http://a:8080#top"}
      - {url: "http://a:0"}
      - {url: "http://:80"}
      - {url: ""}
      - {url: "http://10.0.0.1:80/", weight: -1}
      - {url: "http://%zz"}
routes: [{upstream: u}]
`,
		`upstreams.u.targets[2].url: 10.0.0.1:443 is the address of targets[1] too; list each target once (weights give a bigger share)`,
		`upstreams.u.targets[3].url: "10.0.0.1:80" is not a URL (first path segment in URL cannot contain colon); write one such as "http://127.0.0.1:9001"`,
		`upstreams.u.targets[4].url: want "http://host:port", got "localhost:8080"`,
		`upstreams.u.targets[5].url: scheme "ftp" is not supported; use http:// or https://`,
		`upstreams.u.targets[6].url: must not contain user info (user@ or user:password@); send credentials with a header instead`,
		`upstreams.u.targets[7].url: must not have a path ("/api"): routes own paths; use a route's rewrite.strip_prefix or rewrite.path`,
		`upstreams.u.targets[8].url: must not have a query or fragment; want "http://host:port"`,
		`upstreams.u.targets[9].url: must not have a query or fragment; want "http://host:port"`,
		`upstreams.u.targets[10].url: port "0" must be a number 1-65535`,
		`upstreams.u.targets[11].url: "http://:80" has no host; want "http://host:port"`,
		`upstreams.u.targets[12].url: must be set, such as "http://127.0.0.1:9001"`,
		`upstreams.u.targets[13].weight: must be >= 0 (0 means 1), got -1`,
		`upstreams.u.targets[13].url: 10.0.0.1:80 is the address of targets[0] too; list each target once (weights give a bigger share)`,
		`upstreams.u.targets[14].url: "http://%zz" is not a URL (invalid URL escape "%zz"); write one such as "http://127.0.0.1:9001"`)

	// pool and timeouts
	f(`
upstreams:
  u:
    targets: [{url: "http://a"}]
    pool: {max_conns: -1, read_buffer_size: 100, write_buffer_size: 1023}
    timeouts: {per_try: 31s}
routes: [{upstream: u}]
`,
		`upstreams.u.pool.max_conns: must be > 0, got -1`,
		`upstreams.u.pool.read_buffer_size: must be at least 1KiB, got 100B`,
		`upstreams.u.pool.write_buffer_size: must be at least 1KiB, got 1023B`,
		`upstreams.u.timeouts.per_try: 31s is longer than request 30s, which always fires first; lower per_try or raise request`)

	// routes
	f(validBase+`
routes:
  - {name: users, upstream: users}
  - null
  - {name: "a b", upstream: userz, match: {path: /2}}
  - {name: users, upstream: "", match: {path: /3}}
  - {name: route1, upstream: nope, match: {path: /4}}
`,
		`routes[1]: is empty; give it at least a terminal: upstream, static or redirect`,
		`routes[2].name: name "a b" may only use letters, digits, '_', '.' and '-', and must not be empty`,
		`routes[2].upstream: unknown upstream "userz" (known: orders, users); did you mean "users"?`,
		`routes[3].name: "users" is already used by routes[0]`,
		`routes[3]: has no terminal: set upstream (proxy to one of: orders, users), static (a fixed response), redirect, aggregate, grpc or soap`,
		`routes[4].upstream: unknown upstream "nope" (known: orders, users)`)
	f("routes: [{upstream: u}]", `routes[0].upstream: unknown upstream "u" (known: none; define one under upstreams)`)

	// match
	f(validBase+`
routes:
  - match: {path: "api"}
    upstream: users
  - match:
      path: "/a/{id"
      hosts: ["", "*", "a.com:80", "a.*.com", "*.com", "a_b.com", "-a.com", "a..com", "A.com", "a.COM"]
      methods: [GET, "", "GET /", GET]
      headers: {Connection: close, "X Y": "1", x-a: "1", X-A: "2", "": "3", te: trailers}
      query: {"": "x", a: ""}
    upstream: users
    rewrite: {path: "/{id}"}
`,
		`routes[0].match.path: must start with "/", got "api"`,
		`routes[1].match.path: segment 2 "{id": a parameter must be a whole segment such as {id} or {rest:*}`,
		`routes[1].match.hosts[0]: must not be empty; write a host such as "api.example.com"`,
		`routes[1].match.hosts[1]: "*" would match any host; leave hosts empty instead`,
		`routes[1].match.hosts[2]: "a.com:80" must not have a port: hosts are matched without it`,
		`routes[1].match.hosts[3]: "a.*.com": '*' is only allowed as the whole first label, such as "*.example.com"`,
		`routes[1].match.hosts[4]: "*.com" is too broad: a wildcard needs at least two labels after "*.", such as "*.example.com"`,
		`routes[1].match.hosts[5]: "a_b.com" is not a host name: use letters, digits, '-' and '.', such as "api.example.com"`,
		`routes[1].match.hosts[6]: "-a.com" is not a host name: use letters, digits, '-' and '.', such as "api.example.com"`,
		`routes[1].match.hosts[7]: "a..com" is not a host name: use letters, digits, '-' and '.', such as "api.example.com"`,
		`routes[1].match.hosts[9]: "a.COM" is listed twice (hosts[8]); host names are case-insensitive`,
		`routes[1].match.methods[1]: "" is not an uppercase HTTP method such as "GET"`,
		`routes[1].match.methods[2]: "GET /" is not an uppercase HTTP method such as "GET"`,
		`routes[1].match.methods[3]: "GET" is listed twice`,
		`routes[1].match.headers[""]: "" is not a header name: use letters, digits and !#$%&'*+-.^_`+"`"+`|~`,
		`routes[1].match.headers.Connection: "Connection" is a hop-by-hop header, which the gateway consumes; match on another header`,
		`routes[1].match.headers["X Y"]: "X Y" is not a header name: use letters, digits and !#$%&'*+-.^_`+"`"+`|~`,
		`routes[1].match.headers.te: "te" is a hop-by-hop header, which the gateway consumes; match on another header`,
		`routes[1].match.headers.x-a: "x-a" is the same header as "X-A" (names are case-insensitive); keep one`,
		`routes[1].match.query[""]: a query key must not be empty`)

	// rewrite and timeout
	f(validBase+`
routes:
  - {match: {path: "/a/{id}"}, upstream: users, rewrite: {path: "/b/{ID}"}}
  - {match: {path: "/a/{id}", hosts: [b.com]}, upstream: users, rewrite: {path: "b", strip_prefix: "/a"}}
  - {match: {path: "/a/{id}", hosts: [c.com]}, upstream: users, rewrite: {strip_prefix: "/"}}
  - {match: {path: "/a/{id}", hosts: [d.com]}, upstream: users, rewrite: {strip_prefix: "a"}}
  - {match: {path: "/a/{id}", hosts: [e.com]}, upstream: users, rewrite: {strip_prefix: "/a/"}}
  - {match: {path: "/a/{id}", hosts: [f.com]}, upstream: users, rewrite: {host: "a b"}}
  - {match: {path: "/a/{id}", hosts: [g.com]}, upstream: users, rewrite: {host: "a:0"}}
  - {match: {path: "/a/{id}", hosts: [h.com]}, upstream: users, rewrite: {host: "::1"}}
  - {match: {path: "/a/{id", hosts: [i.com]}, upstream: users, rewrite: {path: "/{nope}"}}
`,
		`routes[0].rewrite.path: unknown parameter {ID} (the route's path has: id)`,
		`routes[1].rewrite: strip_prefix and path are both set; path replaces the whole path, so keep one`,
		`routes[1].rewrite.path: must start with "/", got "b"`,
		`routes[2].rewrite.strip_prefix: "/" strips nothing; remove it`,
		`routes[3].rewrite.strip_prefix: "a" must start with "/", such as "/api"`,
		`routes[4].rewrite.strip_prefix: "/a/" must not end with "/": write "/a", which strips at a segment boundary`,
		`routes[5].rewrite.host: want "target", "preserve" or a host such as "api.internal" or "api.internal:8080", got "a b"`,
		`routes[6].rewrite.host: port "0" of "a:0" must be a number 1-65535`,
		`routes[7].rewrite.host: want "target", "preserve" or a host such as "api.internal" or "api.internal:8080", got "::1"`,
		`routes[8].match.path: segment 2 "{id": a parameter must be a whole segment such as {id} or {rest:*}`)

	// shadowed routes
	f(validBase+`
routes:
  - {name: users, match: {path: "/u/{id}", hosts: [a.com, b.com], headers: {X-V: "1"}, query: {q: "1"}}, upstream: users}
  - {match: {path: "/u/{id}", methods: [GET]}, upstream: users}
  - {match: {path: "/u/{id}", methods: [POST, GET]}, upstream: users}
  - {match: {path: "/u/{uid}", hosts: [B.com, a.com], headers: {x-v: "1"}, query: {q: "1"}}, upstream: orders}
  - {match: {path: "/u/{x}", methods: [get]}, upstream: users}
  - {match: {path: "/u/{id}", methods: [POST]}, upstream: users}
`,
		`routes[3]: never matches: routes[0] ("users") has the same hosts, path, methods and conditions and comes first`,
		`routes[4]: never matches: routes[1] ("route1") has the same hosts, path, methods and conditions and comes first`,
		`routes[5]: never matches: routes[2] ("route2") has the same hosts, path, methods and conditions and comes first`)
}

// TestValidateSeveral checks that one config with problems everywhere gets
// every one of them, each at its path, in config order.
func TestValidateSeveral(t *testing.T) {
	c := mustParse(t, `
listen: "localhost"
server: {max_header_bytes: 100}
upstreams:
  users:
    balancer: least_conn
    hash: {key: "ip"}
    targets: [{url: "https://users:443"}, {url: "http://users:8080/v1"}]
    timeouts: {connect: 1s, per_try: 10s, request: 5s}
  orders: {targets: [{url: "http://orders"}, {url: "http://ORDERS:80"}]}
routes:
  - {name: users, match: {path: "/users/{id}"}, upstream: users, rewrite: {path: "/{user}"}}
  - {name: users, match: {path: "users"}, upstream: orderz}
  - {match: {path: "/users/{x}"}, upstream: users}
`, "yaml")
	c.SetDefaults(nil)
	c.Upstreams["orders"].Pool.MaxConns = -5
	c.Routes[2].Timeout = Duration(-time.Second)
	want := strings.Join([]string{
		`listen: want "host:port" such as ":8080" or "127.0.0.1:8080", got "localhost"`,
		`server.max_header_bytes: must be at least 1KiB, got 100B`,
		`upstreams.orders.targets[1].url: orders:80 is the address of targets[0] too; list each target once (weights give a bigger share)`,
		`upstreams.orders.pool.max_conns: must be > 0, got -5`,
		`upstreams.users.targets[1].url: must not have a path ("/v1"): routes own paths; use a route's rewrite.strip_prefix or rewrite.path`,
		`upstreams.users.timeouts.per_try: 10s is longer than request 5s, which always fires first; lower per_try or raise request`,
		`upstreams.users.hash: only consistent_hash balances on a key; set balancer: consistent_hash or remove hash (balancer is "least_conn")`,
		`routes[0].rewrite.path: unknown parameter {user} (the route's path has: id)`,
		`routes[1].name: "users" is already used by routes[0]`,
		`routes[1].match.path: must start with "/", got "users"`,
		`routes[1].upstream: unknown upstream "orderz" (known: orders, users); did you mean "orders"?`,
		`routes[2].timeout: must be >= 0, got -1s`,
		`routes[2]: never matches: routes[0] ("users") has the same hosts, path, methods and conditions and comes first`,
	}, "\n")
	err := c.Validate()
	if err == nil || err.Error() != want {
		t.Fatalf("Validate:\ngot\n%v\nwant\n%s", err, want)
	}
}

// TestValidateUnset checks that Validate without SetDefaults reports the
// zero values the defaults would have filled, instead of panicking.
func TestValidateUnset(t *testing.T) {
	c := &Config{
		Upstreams: map[string]*Upstream{"u": {Targets: []Target{{URL: "http://a"}}}},
		Routes:    []*Route{{Upstream: "u", Match: Match{Methods: []string{"get"}}}},
	}
	want := strings.Join([]string{
		`listen: must be set, such as ":8080" or "127.0.0.1:8080"`,
		`server.read_timeout: must be > 0, such as "30s", got 0s`,
		`server.write_timeout: must be > 0, such as "30s", got 0s`,
		`server.idle_timeout: must be > 0, such as "30s", got 0s`,
		`server.max_request_body: must be > 0, such as "1MiB", got 0B`,
		`server.max_header_bytes: must be at least 1KiB, got 0B`,
		`server.concurrency: must be > 0, got 0`,
		`server.drain_timeout: must be > 0, such as "30s", got 0s`,
		`server.underscore_headers: "": want drop, reject or allow`,
		`admin.listen: must be set, such as ":8080" or "127.0.0.1:8080"`,
		`access_log.path: must be "off", "stdout", "stderr" or a file path`,
		`access_log.sample: must be > 0 and <= 1 (the share of requests logged), got 0; to log none, set path: off`,
		`access_log.buffer: must be > 0 lines, got 0`,
		`tls.min_version: want "1.2" or "1.3", got ""`,
		`upstreams.u.pool.max_conns: must be > 0, got 0`,
		`upstreams.u.pool.read_buffer_size: must be at least 1KiB, got 0B`,
		`upstreams.u.pool.write_buffer_size: must be at least 1KiB, got 0B`,
		`upstreams.u.pool.max_buffered_body: must be > 0, such as "1MiB", got 0B`,
		`upstreams.u.timeouts.connect: must be > 0, such as "30s", got 0s`,
		`upstreams.u.timeouts.request: must be > 0, such as "30s", got 0s`,
		`upstreams.u.retries.attempts: must be 1 (no retries) to 10, got 0`,
		`upstreams.u.retries.budget: must be a share in (0, 1], such as 0.2; got 0`,
		`upstreams.u.health.passive.max_ejection_percent: must be 1-100, got 0`,
		`routes[0].name: name "" may only use letters, digits, '_', '.' and '-', and must not be empty`,
		`routes[0].match.path: must start with "/", got ""`,
		`routes[0].match.methods[0]: "get" is not an uppercase HTTP method such as "GET"`,
		`api_key.header: "" is not a header name; write one such as "X-API-Key"`,
	}, "\n")
	err := c.Validate()
	if err == nil || err.Error() != want {
		t.Fatalf("Validate:\ngot\n%v\nwant\n%s", err, want)
	}
}

func TestTargetAddr(t *testing.T) {
	f := func(url, want string) {
		t.Helper()
		got, err := Target{URL: url}.Addr()
		if err != nil || got != want {
			t.Fatalf("Addr(%q): got %q, %v; want %q", url, got, err, want)
		}
	}
	f("http://127.0.0.1:9001", "127.0.0.1:9001")
	f("http://Users.Svc", "users.svc:80")
	f("http://users/", "users:80")
	f("http://[::1]:8080", "[::1]:8080")
	f("http://[::1]", "[::1]:80")
	f("HTTP://a:1", "a:1")
}
