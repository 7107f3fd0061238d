package config

import (
	"errors"
	"flag"
	"reflect"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	f := func(s string, want time.Duration) {
		t.Helper()
		got, err := ParseDuration(s)
		if err != nil {
			t.Fatalf("ParseDuration(%q): %s", s, err)
		}
		if got.D() != want {
			t.Fatalf("ParseDuration(%q): got %s; want %s", s, got, want)
		}
	}
	f("250ms", 250*time.Millisecond)
	f("2m", 2*time.Minute)
	f("1m30s", 90*time.Second)
	f(" 1h ", time.Hour)
	f("1.5s", 1500*time.Millisecond)
	f("0", 0)
	f("0s", 0)
}

func TestParseDurationErrors(t *testing.T) {
	f := func(s, want string) {
		t.Helper()
		got, err := ParseDuration(s)
		if err == nil {
			t.Fatalf("ParseDuration(%q): got %s; want error %q", s, got, want)
		}
		if err.Error() != want {
			t.Fatalf("ParseDuration(%q):\ngot  %s\nwant %s", s, err, want)
		}
	}
	f("30", `duration "30" has no unit; write one, such as "30s" or "30ms" (units: ns, us, ms, s, m, h)`)
	f("1.5", `duration "1.5" has no unit; write one, such as "1.5s" or "1.5ms" (units: ns, us, ms, s, m, h)`)
	f("-5", `duration "-5" has no unit; write one, such as "-5s" or "-5ms" (units: ns, us, ms, s, m, h)`)
	f("-1s", `duration "-1s" is negative; it must be >= 0`)
	f("", `empty duration; write a number with a unit, such as "30s"`)
	f("30 s", `invalid duration "30 s"; write a number with a unit, such as "250ms", "30s" or "1m30s" (units: ns, us, ms, s, m, h)`)
	f("1d", `invalid duration "1d"; write a number with a unit, such as "250ms", "30s" or "1m30s" (units: ns, us, ms, s, m, h)`)
	f("9999999h", `invalid duration "9999999h"; write a number with a unit, such as "250ms", "30s" or "1m30s" (units: ns, us, ms, s, m, h)`)
}

func TestParseSize(t *testing.T) {
	f := func(s string, want Size) {
		t.Helper()
		got, err := ParseSize(s)
		if err != nil {
			t.Fatalf("ParseSize(%q): %s", s, err)
		}
		if got != want {
			t.Fatalf("ParseSize(%q): got %d; want %d", s, got, want)
		}
	}
	f("0", 0)
	f("512", 512)
	f("512B", 512)
	f("64KB", 64_000)
	f("64KiB", 64<<10)
	f("64 KiB", 64<<10)
	f(" 4MiB ", 4<<20)
	f("4mib", 4<<20)
	f("3MB", 3_000_000)
	f("2GB", 2_000_000_000)
	f("2GiB", 2<<30)
	f("8589934591GiB", 8589934591<<30)
	f("9223372036854775807", 1<<63-1)
}

func TestParseSizeErrors(t *testing.T) {
	f := func(s, want string) {
		t.Helper()
		got, err := ParseSize(s)
		if err == nil {
			t.Fatalf("ParseSize(%q): got %d; want error %q", s, got, want)
		}
		if err.Error() != want {
			t.Fatalf("ParseSize(%q):\ngot  %s\nwant %s", s, err, want)
		}
	}
	f("", `invalid size ""; write a whole number of bytes with an optional unit, such as "512", "64KiB" or "4MiB" (units: B, KB, MB, GB, KiB, MiB, GiB)`)
	f("MiB", `invalid size "MiB"; write a whole number of bytes with an optional unit, such as "512", "64KiB" or "4MiB" (units: B, KB, MB, GB, KiB, MiB, GiB)`)
	f("4TB", `size "4TB" has an unknown unit "TB"; use one of B, KB, MB, GB, KiB, MiB, GiB`)
	f("4 M", `size "4 M" has an unknown unit "M"; use one of B, KB, MB, GB, KiB, MiB, GiB`)
	f("1.5MiB", `size "1.5MiB" is not a whole number; use a smaller unit, such as "1536KiB" for 1.5MiB`)
	f("-1", `size "-1" is negative; it must be >= 0`)
	f("8589934592GiB", `size "8589934592GiB" is too large; it must be below 8EiB`)
	f("9223372036854775808", `size "9223372036854775808" is too large; it must be below 8EiB`)
}

func TestSizeString(t *testing.T) {
	f := func(s Size, want string) {
		t.Helper()
		if got := s.String(); got != want {
			t.Fatalf("Size(%d).String(): got %q; want %q", int64(s), got, want)
		}
		if back, err := ParseSize(want); err != nil || back != s {
			t.Fatalf("ParseSize(%q): got %d, %v; want %d", want, back, err, int64(s))
		}
	}
	f(0, "0B")
	f(1000, "1000B")
	f(1024, "1KiB")
	f(1536, "1536B")
	f(1536<<10, "1536KiB")
	f(4<<20, "4MiB")
	f(3<<30, "3GiB")
	f(1<<40, "1024GiB")
}

func TestMarshalUnits(t *testing.T) {
	f := func(v interface {
		MarshalJSON() ([]byte, error)
		MarshalYAML() (any, error)
	}, want string) {
		t.Helper()
		j, err := v.MarshalJSON()
		if err != nil || string(j) != `"`+want+`"` {
			t.Fatalf("MarshalJSON(%v): got %s, %v; want %q", v, j, err, want)
		}
		y, err := v.MarshalYAML()
		if err != nil || y != want {
			t.Fatalf("MarshalYAML(%v): got %v, %v; want %s", v, y, err, want)
		}
	}
	f(Duration(1500*time.Millisecond), "1.5s")
	f(Duration(90*time.Second), "1m30s")
	f(Duration(0), "0s")
	f(Size(8<<10), "8KiB")
	f(Size(1000), "1000B")
}

func TestUnitFlags(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	d, s := Duration(time.Second), Size(1<<20)
	fs.Var(&d, "timeout", "")
	fs.Var(&s, "size", "")
	if err := fs.Parse([]string{"-timeout=250ms", "-size=64KiB"}); err != nil {
		t.Fatalf("Parse: %s", err)
	}
	if d.D() != 250*time.Millisecond || s.Int() != 64<<10 {
		t.Fatalf("got -timeout %s, -size %s; want 250ms, 64KiB", d, s)
	}
	if err := fs.Set("size", "lots"); err == nil || s != 64<<10 {
		t.Fatalf("Set(size, lots): got %v, size %s; want an error and 64KiB kept", err, s)
	}
	if err := fs.Set("timeout", "5"); err == nil || d.D() != 250*time.Millisecond {
		t.Fatalf("Set(timeout, 5): got %v, timeout %s; want an error and 250ms kept", err, d)
	}
}

func TestErrors(t *testing.T) {
	errs := Errors{
		{Path: "routes[2].upstream", Msg: `unknown upstream "x"`},
		{Msg: "config: invalid YAML"},
	}
	want := "routes[2].upstream: unknown upstream \"x\"\nconfig: invalid YAML"
	if got := errs.Error(); got != want {
		t.Fatalf("Error():\ngot  %s\nwant %s", got, want)
	}
	var err error = errs
	var fe *FieldError
	if !errors.As(err, &fe) || fe != errs[0] {
		t.Fatalf("errors.As(*FieldError): got %v; want the first problem", fe)
	}
	if err := (Errors(nil)).err(); err != nil {
		t.Fatalf("empty Errors.err(): got %#v; want nil", err)
	}
}

func TestPaths(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Fatalf("got %s; want %s", got, want)
		}
	}
	f(pathField("", "routes"), "routes")
	f(pathIndex("routes", 2), "routes[2]")
	f(pathField(pathIndex("routes", 2), "match"), "routes[2].match")
	f(pathField("upstreams", "users-v2_x"), "upstreams.users-v2_x")
	f(pathField("upstreams", "my svc"), `upstreams["my svc"]`)
	f(pathField("upstreams", "a.b"), `upstreams["a.b"]`)
	f(pathField("query", ""), `query[""]`)
	f(pathField("headers", "X-\"q\""), `headers["X-\"q\""]`)
}

func TestDidYouMean(t *testing.T) {
	f := func(s string, candidates []string, want string) {
		t.Helper()
		if got := didYouMean(s, candidates); got != want {
			t.Fatalf("didYouMean(%q, %q): got %q; want %q", s, candidates, got, want)
		}
	}
	keys := []string{"hosts", "path", "methods", "headers", "query"}
	f("paht", keys, `; did you mean "path"?`)
	f("Path", keys, `; did you mean "path"?`)
	f("host", keys, `; did you mean "hosts"?`)
	f("header", keys, `; did you mean "headers"?`)
	f("mehtods", keys, `; did you mean "methods"?`)
	f("upstream", keys, "")
	f("x", keys, "")
	f("userz", []string{"orders", "users"}, `; did you mean "users"?`)
	f("a", nil, "")
}

func TestEditDistance(t *testing.T) {
	f := func(a, b string, want int) {
		t.Helper()
		if got := editDistance(a, b); got != want {
			t.Fatalf("editDistance(%q, %q): got %d; want %d", a, b, got, want)
		}
	}
	f("", "", 0)
	f("path", "path", 0)
	f("paht", "path", 1)
	f("pat", "path", 1)
	f("paths", "path", 1)
	f("", "abc", 3)
	f("kitten", "sitting", 3)
}

func TestBuiltinDefaults(t *testing.T) {
	d := BuiltinDefaults()
	want := Defaults{
		Server: Server{
			ReadTimeout: Duration(30 * time.Second), WriteTimeout: Duration(30 * time.Second),
			IdleTimeout: Duration(90 * time.Second), MaxRequestBody: 4 << 20, MaxHeaderBytes: 8 << 10,
			Concurrency: 262144, DrainTimeout: Duration(30 * time.Second),
		},
		Pool: Pool{
			MaxConns: 512, MaxIdleConnDuration: Duration(10 * time.Second),
			ReadBufferSize: 8192, WriteBufferSize: 8192, MaxBufferedBody: 1 << 20,
		},
		Timeouts: Timeouts{Connect: Duration(time.Second), Request: Duration(30 * time.Second)},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("BuiltinDefaults():\ngot  %+v\nwant %+v", d, want)
	}
}

func TestSetDefaults(t *testing.T) {
	c := mustParse(t, `
server: {read_timeout: 5s, max_conns_per_ip: 10}
upstreams:
  users:
    balancer: p2c
    targets: [{url: "http://a:1"}, {url: "http://b:1", weight: 3}]
    pool: {max_conns: 8, read_buffer_size: 1KiB}
    timeouts: {request: 2s}
  empty: null
routes:
  - {name: users, match: {methods: [get, Post]}, upstream: users, rewrite: {host: preserve}}
  - null
  - {match: {path: /x}, upstream: users}
`, "yaml")
	d := BuiltinDefaults()
	d.Server.Concurrency = 100
	d.Server.TrustedProxies = []string{"10.0.0.0/8"}
	d.Pool.MaxConnWaitTimeout = Duration(time.Second)
	c.SetDefaults(&d)

	s := Server{
		ReadTimeout: Duration(5 * time.Second), WriteTimeout: Duration(30 * time.Second),
		IdleTimeout: Duration(90 * time.Second), MaxRequestBody: 4 << 20, MaxHeaderBytes: 8 << 10,
		Concurrency: 100, MaxConnsPerIP: 10, TrustedProxies: []string{"10.0.0.0/8"},
		DrainTimeout:        Duration(30 * time.Second),
		StripRequestHeaders: DefaultStripRequestHeaders, UnderscoreHeaders: UnderscoreHeadersDrop,
	}
	u := &Upstream{
		Balancer: "p2c",
		Targets:  []Target{{URL: "http://a:1", Weight: 1}, {URL: "http://b:1", Weight: 3}},
		Pool: Pool{
			MaxConns: 8, MaxIdleConnDuration: Duration(10 * time.Second), MaxConnWaitTimeout: Duration(time.Second),
			ReadBufferSize: 1 << 10, WriteBufferSize: 8 << 10, MaxBufferedBody: 1 << 20,
		},
		Timeouts: Timeouts{Connect: Duration(time.Second), Request: Duration(2 * time.Second)},
		Retries: Retries{
			Attempts: 2, Budget: 0.2, MinRetries: 3, On: []string{"connect_error", "reset", "timeout", "502", "503", "504"},
			Backoff: Backoff{Base: Duration(25 * time.Millisecond), Max: Duration(250 * time.Millisecond)},
		},
		Health: Health{
			Active: ActiveHealth{
				Interval: Duration(5 * time.Second), Jitter: Duration(500 * time.Millisecond), Timeout: Duration(time.Second),
				ExpectedStatus: "200-399", Healthy: 2, Unhealthy: 3,
			},
			Passive: PassiveHealth{
				ConsecutiveFailures: new(5), EjectionTime: Duration(30 * time.Second), MaxEjectionTime: Duration(300 * time.Second),
				MaxEjectionPercent: 50, OnStatus: []int{500, 502, 503, 504},
			},
			PanicThreshold: 50,
		},
	}
	want := &Config{
		Listen:    ":8080",
		Server:    s,
		Admin:     Admin{Listen: DefaultAdminListen},
		AccessLog: AccessLog{Path: AccessLogOff, Sample: 1, Buffer: DefaultAccessLogBuffer},
		TLS:       TLS{MinVersion: "1.2"},
		Upstreams: map[string]*Upstream{"users": u, "empty": nil},
		Routes: []*Route{
			{Name: "users", Match: Match{Path: "/{path:*}", Methods: []string{"GET", "POST"}}, Upstream: "users", Rewrite: Rewrite{Host: "preserve"}},
			nil,
			{Name: "route2", Match: Match{Path: "/x"}, Upstream: "users", Rewrite: Rewrite{Host: "target"}},
		},
		APIKey:          APIKeySource{Header: DefaultAPIKeyHeader},
		Cache:           CacheStore{MaxSize: DefaultCacheMaxSize},
		SecurityHeaders: SecurityHeaders{HSTS: DefaultHSTS, ContentTypeOptions: DefaultContentTypeOptions},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("SetDefaults:\ngot  %s\nwant %s", dump(c), dump(want))
	}

	// the defaults' slices are not shared with the config
	c.Server.TrustedProxies[0] = "changed"
	if d.Server.TrustedProxies[0] != "10.0.0.0/8" {
		t.Fatalf("SetDefaults shares TrustedProxies with the defaults")
	}

	// set values are kept, and a second call changes nothing
	c.SetDefaults(nil)
	if c.Server.Concurrency != 100 || c.Upstreams["users"].Pool.MaxConnWaitTimeout != Duration(time.Second) {
		t.Fatalf("second SetDefaults changed set values: %s", dump(c))
	}
}
