package static_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/coretest"
	"fastgate/core/static"
)

// greeter is a filter written outside core: it reads the route's {name}
// parameter, makes the matching consumer the request's, adds a field to
// the access log, and in its response phase tells the client who it was.
type greeter struct {
	param     int // index of {name}, resolved once at build
	consumers []*core.Consumer
	groups    map[string]string // consumer name -> its groups, joined
}

func (g *greeter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	name := r.ParamAt(g.param)
	for _, c := range g.consumers {
		if string(name) == c.Name {
			r.SetConsumer(c)
			r.LogField("greeted", name)
			return true
		}
	}
	r.Fail(ctx, errUnknown)
	return false
}

func (g *greeter) After(ctx *fasthttp.RequestCtx, r *core.Request) {
	if c := r.Consumer(); c != nil {
		ctx.Response.Header.Set("X-Consumer", c.Name)
		ctx.Response.Header.Set("X-Groups", g.groups[c.Name])
	}
}

var errUnknown = &core.Error{Status: fasthttp.StatusForbidden, Err: errorString("unknown consumer")}

type errorString string

func (e errorString) Error() string { return string(e) }

// greeterBuilder gives every route with a {name} parameter a greeter.
type greeterBuilder struct{}

func (greeterBuilder) Key(_ *config.Config, rc *config.Route) any {
	if !strings.Contains(rc.Match.Path, "{name}") {
		return nil
	}
	return rc.Match.Path
}

func (greeterBuilder) Validate(*core.Env) error { return nil }

func (greeterBuilder) Build(e *core.Env) (core.Filter, error) {
	g := &greeter{param: e.ParamIndex("name"), groups: map[string]string{}, consumers: []*core.Consumer{
		{Name: "ada", Groups: []string{"admins", "staff"}},
		{Name: "bob", Groups: []string{"staff"}},
	}}
	for _, c := range g.consumers {
		g.groups[c.Name] = strings.Join(c.Groups, ",")
	}
	return g, nil
}

const extensionConfig = `
access_log: {path: %s}
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - name: hello
    match: {path: "/hello/{name}", methods: [GET]}
    static: {status: 200, body: "hello\n", headers: {Cache-Control: no-store}}
  - name: health
    match: {path: /healthz}
    static: {status: 204}
  - name: api
    match: {path: "/api/{rest:*}"}
    upstream: users
`

// TestExtension adds a terminal (static) and a filter that reads a path
// parameter and sets a consumer, both outside package core, registered
// through core.Options alone.
func TestExtension(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	gw := coretest.Start(t, strings.Replace(extensionConfig, "%s", logPath, 1), core.Options{
		Filters:   []core.FilterBuilder{greeterBuilder{}},
		Terminals: []core.TerminalBuilder{static.Builder{}},
	}, map[string]fasthttp.RequestHandler{"10.0.0.1:80": func(ctx *fasthttp.RequestCtx) { ctx.WriteString("upstream") }}) //nolint:errcheck

	// body is the whole body when empty, else its start.
	f := func(method, uri string, status int, body string, headers ...string) {
		t.Helper()
		resp := gw.Do(method, uri)
		defer fasthttp.ReleaseResponse(resp)
		got := string(resp.Body())
		if resp.StatusCode() != status || body == "" && got != "" || !strings.HasPrefix(got, body) {
			t.Fatalf("%s %s: got %d %q; want %d %q", method, uri, resp.StatusCode(), resp.Body(), status, body)
		}
		for _, hv := range headers {
			k, v, _ := strings.Cut(hv, ": ")
			if got := string(resp.Header.Peek(k)); got != v {
				t.Fatalf("%s %s: header %s got %q; want %q", method, uri, k, got, v)
			}
		}
		if len(resp.Header.Peek("X-Request-ID")) == 0 {
			t.Fatalf("%s %s: no X-Request-ID", method, uri)
		}
	}
	f("GET", "http://gw/hello/ada", 200, "hello\n", "X-Consumer: ada", "X-Groups: admins,staff",
		"Cache-Control: no-store", "Content-Type: text/plain; charset=utf-8")
	f("GET", "http://gw/hello/bob", 200, "hello\n", "X-Consumer: bob")
	f("HEAD", "http://gw/hello/bob", 200, "", "X-Consumer: bob")
	f("GET", "http://gw/hello/eve", 403, `{"error":"unknown consumer","status":403,"request_id":"`)
	f("POST", "http://gw/hello/ada", 405, `{"error":"method not allowed on this route"`, "Allow: GET, HEAD")
	f("GET", "http://gw/healthz", 204, "")
	f("GET", "http://gw/api/x", 200, "upstream")

	gw.Stop() // flushes the access log
	lines := readLog(t, logPath)
	if len(lines) != 7 {
		t.Fatalf("access log: %d lines; want 7", len(lines))
	}
	if l := lines[0]; l["consumer"] != "ada" || l["greeted"] != "ada" || l["route"] != "hello" || l["upstream"] != "" {
		t.Fatalf("access log line of a greeted static request: %v", l)
	}
	if l := lines[3]; l["consumer"] != nil {
		t.Fatalf("access log line of a refused request has a consumer: %v", l)
	}
	if l := lines[6]; l["upstream"] != "users" || l["target"] != "10.0.0.1:80" {
		t.Fatalf("access log line of a proxied request: %v", l)
	}
}

func readLog(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("access log line %q: %s", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}
