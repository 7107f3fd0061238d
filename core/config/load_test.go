package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/goccy/go-yaml"
)

const testYAML = `
listen: "127.0.0.1:8080"
server:
  read_timeout: 10s
  max_request_body: 1MiB
  max_header_bytes: 16 KiB
  concurrency: 1000
  trusted_proxies: ["10.0.0.0/8", "192.168.1.1"]
upstreams:
  users:
    targets:
      - url: "http://127.0.0.1:9001"
      - {url: "http://127.0.0.1:9002", weight: 2}
    pool: {max_conns: 64, max_idle_conn_duration: 30s, read_buffer_size: 4096}
    timeouts: {connect: 250ms, per_try: 2s, request: 5s}
  orders:
    balancer: round_robin
    targets: [{url: "http://127.0.0.1:9003"}]
routes:
  - name: users
    match:
      hosts: ["api.example.com", "*.example.org"]
      path: "/api/users/{id}"
      methods: [GET, put]
      headers: {X-Api-Version: "2"}
      query: {debug: "1"}
    upstream: users
    rewrite: {path: "/users/{id}", host: preserve}
    timeout: 3s
  - match: {path: "/api/orders/{rest:*}"}
    upstream: orders
    rewrite: {strip_prefix: /api}
`

const testJSON = `{
  "listen": "127.0.0.1:8080",
  "server": {
    "read_timeout": "10s",
    "max_request_body": "1MiB",
    "max_header_bytes": "16 KiB",
    "concurrency": 1000,
    "trusted_proxies": ["10.0.0.0/8", "192.168.1.1"]
  },
  "upstreams": {
    "users": {
      "targets": [
        {"url": "http://127.0.0.1:9001"},
        {"url": "http://127.0.0.1:9002", "weight": 2}
      ],
      "pool": {"max_conns": 64, "max_idle_conn_duration": "30s", "read_buffer_size": 4096},
      "timeouts": {"connect": "250ms", "per_try": "2s", "request": "5s"}
    },
    "orders": {"balancer": "round_robin", "targets": [{"url": "http://127.0.0.1:9003"}]}
  },
  "routes": [
    {
      "name": "users",
      "match": {
        "hosts": ["api.example.com", "*.example.org"],
        "path": "/api/users/{id}",
        "methods": ["GET", "put"],
        "headers": {"X-Api-Version": "2"},
        "query": {"debug": "1"}
      },
      "upstream": "users",
      "rewrite": {"path": "/users/{id}", "host": "preserve"},
      "timeout": "3s"
    },
    {
      "match": {"path": "/api/orders/{rest:*}"},
      "upstream": "orders",
      "rewrite": {"strip_prefix": "/api"}
    }
  ]
}`

// testConfig is what testYAML and testJSON decode to.
func testConfig() *Config {
	return &Config{
		Listen: "127.0.0.1:8080",
		Server: Server{
			ReadTimeout:    Duration(10 * time.Second),
			MaxRequestBody: 1 << 20,
			MaxHeaderBytes: 16 << 10,
			Concurrency:    1000,
			TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1"},
		},
		Upstreams: map[string]*Upstream{
			"users": {
				Targets: []Target{{URL: "http://127.0.0.1:9001"}, {URL: "http://127.0.0.1:9002", Weight: 2}},
				Pool:    Pool{MaxConns: 64, MaxIdleConnDuration: Duration(30 * time.Second), ReadBufferSize: 4096},
				Timeouts: Timeouts{
					Connect: Duration(250 * time.Millisecond),
					PerTry:  Duration(2 * time.Second),
					Request: Duration(5 * time.Second),
				},
			},
			"orders": {Balancer: "round_robin", Targets: []Target{{URL: "http://127.0.0.1:9003"}}},
		},
		Routes: []*Route{
			{
				Name: "users",
				Match: Match{
					Hosts:   []string{"api.example.com", "*.example.org"},
					Path:    "/api/users/{id}",
					Methods: []string{"GET", "put"},
					Headers: map[string]string{"X-Api-Version": "2"},
					Query:   map[string]string{"debug": "1"},
				},
				Upstream: "users",
				Rewrite:  Rewrite{Path: "/users/{id}", Host: "preserve"},
				Timeout:  Duration(3 * time.Second),
			},
			{
				Match:    Match{Path: "/api/orders/{rest:*}"},
				Upstream: "orders",
				Rewrite:  Rewrite{StripPrefix: "/api"},
			},
		},
	}
}

func noEnv(string) (string, bool) { return "", false }

func mustParse(t *testing.T, data, format string) *Config {
	t.Helper()
	c, err := Parse([]byte(data), format, noEnv)
	if err != nil {
		t.Fatalf("Parse(%s): %s", format, err)
	}
	return c
}

func TestParseYAMLAndJSON(t *testing.T) {
	f := func(data, format string) {
		t.Helper()
		got, want := mustParse(t, data, format), testConfig()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse(%s):\ngot  %s\nwant %s", format, dump(got), dump(want))
		}
	}
	f(testYAML, "yaml")
	f(testJSON, "json")
}

func dump(c *Config) string {
	b, err := json.Marshal(c)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestParseMarshaled checks that a Config marshaled to JSON or YAML (with
// durations and sizes as strings) parses back to itself.
func TestParseMarshaled(t *testing.T) {
	f := func(format string, marshal func(any) ([]byte, error)) {
		t.Helper()
		want := testConfig()
		want.SetDefaults(nil)
		// An empty list or mapping marshals as [] or {} in YAML, and parses
		// back as empty, not nil.
		want.TLS.Certs = []Cert{}
		want.Consumers, want.JWT = []*Consumer{}, []*JWTIssuer{}
		want.IP = IPRules{Allow: []string{}, Deny: []string{}}
		want.SecurityHeaders.Set = map[string]string{}
		want.Routes[1].Match = Match{Path: want.Routes[1].Match.Path, Hosts: []string{}, Methods: []string{}, Headers: map[string]string{}, Query: map[string]string{}}
		data, err := marshal(want)
		if err != nil {
			t.Fatalf("marshal %s: %s", format, err)
		}
		got := mustParse(t, string(data), format)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse(%s) of\n%s\ngot  %s\nwant %s", format, data, dump(got), dump(want))
		}
	}
	f("json", func(v any) ([]byte, error) { return json.Marshal(v) })
	f("yaml", func(v any) ([]byte, error) { return yaml.Marshal(v) })
}

func TestParseErrors(t *testing.T) {
	f := func(format, data, want string) {
		t.Helper()
		c, err := Parse([]byte(data), format, noEnv)
		if err == nil {
			t.Fatalf("Parse(%q): got %s; want error %q", data, dump(c), want)
		}
		if c != nil {
			t.Fatalf("Parse(%q): got a config with the error %q; want nil", data, err)
		}
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("Parse(%q): got error %T; want Errors", data, err)
		}
		if got := err.Error(); got != want {
			t.Fatalf("Parse(%q):\ngot  %s\nwant %s", data, got, want)
		}
	}

	// unknown fields, with their paths and the known keys
	f("yaml", "routes:\n- match: {path: /a}\n- match: {paht: /b}\n",
		`routes[1].match.paht: unknown field "paht" (known: hosts, path, methods, headers, query); did you mean "path"?`)
	f("yaml", "lisen: :80\n",
		`lisen: unknown field "lisen" (known: listen, server, admin, access_log, tls, upstreams, routes, rate_limit, redis, consumers, api_key, jwt, ip, cache, security_headers); did you mean "listen"?`)
	f("yaml", "upstreams: {my svc: {targets: [{url: x, wieght: 2}], zzz: 1}}\n",
		`upstreams["my svc"].targets[0].wieght: unknown field "wieght" (known: url, weight); did you mean "weight"?`+"\n"+
			`upstreams["my svc"].zzz: unknown field "zzz" (known: balancer, hash, targets, discovery, pool, timeouts, retries, health, circuit_breaker, tls)`)
	f("json", `{"server": {"concurency": 5}}`,
		`server.concurency: unknown field "concurency" (known: read_timeout, write_timeout, idle_timeout, max_request_body, max_header_bytes, concurrency, max_conns_per_ip, max_requests_per_conn, drain_timeout, trusted_proxies, strip_request_headers, http2, h2c, underscore_headers); did you mean "concurrency"?`)

	// type mismatches name the path and the expected type
	f("yaml", "upstreams: {users: {pool: {max_conns: many}}}",
		`upstreams.users.pool.max_conns: want an integer, got string "many"`)
	f("yaml", "upstreams: {users: {pool: {max_conns: 1.5}}}",
		`upstreams.users.pool.max_conns: want an integer, got number 1.5`)
	f("yaml", "upstreams: {users: {pool: {max_conns: 99999999999999999999}}}",
		`upstreams.users.pool.max_conns: integer 99999999999999999999 is out of range; the largest is 9223372036854775807`)
	f("yaml", "upstreams: {users: {pool: {max_conns: true}}}",
		`upstreams.users.pool.max_conns: want an integer, got true`)
	f("yaml", "routes: {a: 1}", `routes: want a list, got a mapping`)
	f("yaml", "routes: [5]", `routes[0]: want a mapping, got number 5`)
	f("yaml", "upstreams: [a]", `upstreams: want a mapping, got a list`)
	f("yaml", "listen: 8080", `listen: want a string, got number 8080; quote it to keep it as text: "8080"`)
	f("yaml", "routes: [{match: {headers: {X-V: 2}}}]",
		`routes[0].match.headers.X-V: want a string, got number 2; quote it to keep it as text: "2"`)
	f("yaml", "routes: [{match: {methods: GET}}]", `routes[0].match.methods: want a list, got string "GET"`)
	f("yaml", "listen: !!binary aGVsbG8=", `listen: want a string, got binary data`)
	f("json", `{"server": {"read_timeout": 30}}`,
		`server.read_timeout: duration "30" has no unit; write one, such as "30s" or "30ms" (units: ns, us, ms, s, m, h)`)
	f("json", `{"server": {"read_timeout": "-1s"}}`,
		`server.read_timeout: duration "-1s" is negative; it must be >= 0`)
	f("json", `{"server": {"max_request_body": -1}}`,
		`server.max_request_body: size "-1" is negative; it must be >= 0`)
	f("json", `{"server": {"max_request_body": "4 MB/s"}}`,
		`server.max_request_body: size "4 MB/s" has an unknown unit "MB/s"; use one of B, KB, MB, GB, KiB, MiB, GiB`)
	f("json", `{"server": {"max_request_body": {}}}`,
		`server.max_request_body: want a size such as "4MiB", got a mapping`)
	f("json", `[]`, `want a mapping, got a list`)

	// every problem is reported, in document order
	f("yaml", `
listen: [1]
server: {read_timeout: soon, concurrency: lots}
upstreams:
  users: {targets: [{url: "${USERS_URL}"}], balancr: p2c}
routes:
  - {name: a, upstream: users, timeout: 5}
`, strings.Join([]string{
		`listen: want a string, got a list`,
		`server.read_timeout: invalid duration "soon"; write a number with a unit, such as "250ms", "30s" or "1m30s" (units: ns, us, ms, s, m, h)`,
		`server.concurrency: want an integer, got string "lots"`,
		`upstreams.users.targets[0].url: environment variable "USERS_URL" is not set (set it, or write ${USERS_URL:-default})`,
		`upstreams.users.balancr: unknown field "balancr" (known: balancer, hash, targets, discovery, pool, timeouts, retries, health, circuit_breaker, tls); did you mean "balancer"?`,
		`routes[0].timeout: duration "5" has no unit; write one, such as "5s" or "5ms" (units: ns, us, ms, s, m, h)`,
	}, "\n"))

	// JSON has no merge keys: a repeated key is a mistake
	f("json", `{"listen": ":1", "routes": [{"upstream": "a", "upstream": "b"}], "listen": ":2"}`,
		"routes[0].upstream: given twice; keep one\nlisten: given twice; keep one")
	f("json", `{"upstreams": {"a": null, "a": null}}`, `upstreams.a: given twice; keep one`)

	// syntax errors report the line and column
	f("yaml", "listen: :80\nroutes: [\n", `config: invalid YAML at line 2, column 9: sequence end token ']' not found`)
	f("yaml", "a: 1\na: 2\n", `config: invalid YAML at line 2, column 1: mapping key "a" already defined at [1:1]`)
	f("json", "{\n  \"listen\": \":80\",\n  \"routes\": [1 2]\n}", `config: invalid JSON at line 3, column 16: invalid character '2' after array element`)
	f("json", `{"listen": ":80"`, `config: invalid JSON at line 1, column 17: unexpected end of the document`)
	f("json", `{"listen": ":80"} {}`, `config: invalid JSON at line 1, column 19: unexpected data after the top-level value`)
	f("json", " \n", `config: the JSON document is empty; write at least "{}"`)
	f("json", strings.Repeat("[", 200), `config: invalid JSON at line 1, column 102: nested deeper than 100 levels`)
	f("toml", "listen = 1", `config: unknown format "toml"; use "yaml" or "json"`)
}

func TestParseNull(t *testing.T) {
	f := func(format, data string, want *Config) {
		t.Helper()
		if got := mustParse(t, data, format); !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse(%q):\ngot  %s\nwant %s", data, dump(got), dump(want))
		}
	}
	f("yaml", "", &Config{})
	f("yaml", "listen:\nserver: ~\nroutes:\n", &Config{})
	f("json", `{"listen": null, "server": {"read_timeout": null}}`, &Config{})
	f("yaml", "upstreams: {users: null}\nroutes: [null, {}]\n", &Config{
		Upstreams: map[string]*Upstream{"users": nil},
		Routes:    []*Route{nil, {}},
	})
}

// TestParseYAMLMergeKey checks that anchors, aliases and merge keys work,
// the merged keys overridden by the mapping's own.
func TestParseYAMLMergeKey(t *testing.T) {
	c := mustParse(t, `
upstreams:
  a: {targets: [{url: "http://a"}], timeouts: &fast {connect: 100ms, request: 1s}}
  b:
    targets: [{url: "http://b"}]
    timeouts: {<<: *fast, request: 2s}
`, "yaml")
	got, want := c.Upstreams["b"].Timeouts, Timeouts{Connect: Duration(100 * time.Millisecond), Request: Duration(2 * time.Second)}
	if got != want {
		t.Fatalf("merged timeouts: got %+v; want %+v", got, want)
	}
}

// TestParseYAMLAliasBomb checks that a "billion laughs" document fails
// fast instead of expanding its aliases into memory.
func TestParseYAMLAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", "))
	}
	_, err := Parse([]byte(b.String()), "yaml", noEnv)
	want := "config: the document has more than 1048576 values once its aliases are expanded; write it out or use fewer aliases"
	if err == nil || err.Error() != want {
		t.Fatalf("Parse(alias bomb):\ngot  %v\nwant %s", err, want)
	}
}

func TestParseEnv(t *testing.T) {
	env := map[string]string{"HOST": "10.0.0.1", "PORT": "9001", "EMPTY": "", "MAXC": "64", "WAIT": "250ms"}
	lookupEnv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f := func(value, want string) {
		t.Helper()
		c, err := Parse([]byte(`{"listen": `+strconvQuote(value)+`}`), "json", lookupEnv)
		if err != nil {
			t.Fatalf("Parse(listen: %q): %s", value, err)
		}
		if c.Listen != want {
			t.Fatalf("Parse(listen: %q): got %q; want %q", value, c.Listen, want)
		}
	}
	f("${HOST}:${PORT}", "10.0.0.1:9001")
	f("${HOST:-0.0.0.0}:${NOPE:-80}", "10.0.0.1:80")
	f("${EMPTY:-dflt}", "dflt")
	f("${EMPTY}", "")
	f("${NOPE:-}", "")
	f("${NOPE:-a:-b}", "a:-b")
	f("$$HOST costs $$5", "$HOST costs $5")
	f("$$${HOST}", "$10.0.0.1")
	f("a$b $ $", "a$b $ $")
	f("plain", "plain")

	// numbers, durations and sizes may come from variables
	c, err := Parse([]byte(`
upstreams:
  u:
    pool: {max_conns: "${MAXC:-8}", max_conn_wait_timeout: "${WAIT}", read_buffer_size: "${BUF:-16KiB}"}
routes:
  - {match: {headers: {X-Host: "${HOST}", "${HOST}": x}}}
`), "yaml", lookupEnv)
	if err != nil {
		t.Fatalf("Parse: %s", err)
	}
	gotPool, wantPool := c.Upstreams["u"].Pool, Pool{MaxConns: 64, MaxConnWaitTimeout: Duration(250 * time.Millisecond), ReadBufferSize: 16 << 10}
	if gotPool != wantPool {
		t.Fatalf("pool: got %+v; want %+v", gotPool, wantPool)
	}
	// values are expanded, keys are not
	gotHeaders, wantHeaders := c.Routes[0].Match.Headers, map[string]string{"X-Host": "10.0.0.1", "${HOST}": "x"}
	if !reflect.DeepEqual(gotHeaders, wantHeaders) {
		t.Fatalf("headers: got %v; want %v", gotHeaders, wantHeaders)
	}
}

func TestParseEnvErrors(t *testing.T) {
	f := func(data, want string) {
		t.Helper()
		_, err := Parse([]byte(data), "yaml", func(k string) (string, bool) { return "many", k == "MAXC" })
		if err == nil || err.Error() != want {
			t.Fatalf("Parse(%q):\ngot  %v\nwant %s", data, err, want)
		}
	}
	f(`upstreams: {users: {targets: [{url: "http://${USERS_URL}"}]}}`,
		`upstreams.users.targets[0].url: environment variable "USERS_URL" is not set (set it, or write ${USERS_URL:-default})`)
	f(`listen: "${PORT"`,
		`listen: unclosed "${PORT"; write ${NAME} or ${NAME:-default}, or $$ for a literal $`)
	f(`listen: "${}"`,
		`listen: malformed "${}": "" is not a variable name (letters, digits and '_', not starting with a digit); write ${NAME} or ${NAME:-default}, or $$ for a literal $`)
	f(`listen: "${A-b}"`,
		`listen: malformed "${A-b}": "A-b" is not a variable name (letters, digits and '_', not starting with a digit); write ${NAME} or ${NAME:-default}, or $$ for a literal $`)
	f(`upstreams: {u: {pool: {max_conns: "${MAXC}"}}}`,
		`upstreams.u.pool.max_conns: want an integer, got string "many"`)
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := func(path string) {
		t.Helper()
		got, err := Load(path)
		if err != nil {
			t.Fatalf("Load(%s): %s", path, err)
		}
		if want := testConfig(); !reflect.DeepEqual(got, want) {
			t.Fatalf("Load(%s):\ngot  %s\nwant %s", path, dump(got), dump(want))
		}
	}
	f(write("a.yaml", testYAML))
	f(write("a.yml", testYAML))
	f(write("A.YAML", testYAML))
	f(write("a.json", testJSON))

	// the extension picks the format: YAML in a .json file is a JSON error
	_, err := Load(write("b.json", testYAML))
	if err == nil || !strings.HasPrefix(err.Error(), "config: invalid JSON at line 2, column 1: ") {
		t.Fatalf("Load(YAML as .json): got %v; want a JSON syntax error at line 2", err)
	}
	p := write("c.toml", "")
	_, err = Load(p)
	if want := `config: file "` + p + `" has extension ".toml"; name it *.yaml, *.yml or *.json`; err == nil || err.Error() != want {
		t.Fatalf("Load(.toml): got %v; want %s", err, want)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Fatalf("Load(missing): got %v; want a config: error wrapping fs.ErrNotExist", err)
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte(testYAML))
	f.Add([]byte("routes: [{match: {path: /}, upstream: u}]\nupstreams: {u: {targets: [{url: http://a}]}}"))
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("upstreams: {u: {pool: {max_conns: \"${N:-1}\"}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, data, "yaml")
	})
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(testJSON))
	f.Add([]byte(`{"routes": [{"match": {"path": "/{a}/{b:*}"}, "rewrite": {"path": "/{b}?a={a}"}, "upstream": "u"}]}`))
	f.Add([]byte(`{"upstreams": {"u": null}, "routes": [null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzParse(t, data, "json")
	})
}

// fuzzParse checks that Parse never panics, and that a config it accepts
// goes through SetDefaults and Validate without a panic either.
func fuzzParse(t *testing.T, data []byte, format string) {
	c, err := Parse(data, format, func(k string) (string, bool) { return "1", k == "N" })
	if err != nil {
		if c != nil {
			t.Fatalf("Parse: got a config with error %s", err)
		}
		return
	}
	c.SetDefaults(nil)
	if err := c.Validate(); err != nil && err.Error() == "" {
		t.Fatalf("Validate: got an error with no text")
	}
}

func TestParseCheckedReportsDecodeAndValidationProblemsTogether(t *testing.T) {
	doc := `
listen: "127.0.0.1:99999"
server: {read_timeout: 30}
upstreams:
  users:
    balancer: p3c
    targets: [{url: "http://a:1"}]
    pool: {max_conns: many}
routes:
  - match: {paht: "/x"}
    upstream: userz
`
	d := BuiltinDefaults()
	_, err := ParseChecked([]byte(doc), "yaml", nil, &d)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v; want Errors", err)
	}
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Path)
	}
	want := []string{
		"server.read_timeout",
		"upstreams.users.pool.max_conns",
		"routes[0].match.paht",
		"listen",
		"upstreams.users.balancer",
		"routes[0].upstream",
	}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Fatalf("problem paths:\ngot  %q\nwant %q\nerrors:\n%s", paths, want, err)
	}
}
