package grpc_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
	fgrpc "fastgate/core/grpc"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const terminalConfig = `
upstreams:
  echo: {targets: [{url: "http://ADDR"}]}
  two:
    targets: [{url: "http://CLOSED"}, {url: "http://ADDR"}]
    retries: {attempts: 2, backoff: {base: 1ms, max: 1ms}}
routes:
  - name: echo
    match: {path: "/echo/{s}/{i32}", methods: [GET, POST]}
    grpc:
      upstream: echo
      proto: testdata/test.proto
      method: fgtest.v1.Echo/Echo
      metadata: [X-Request-ID, Authorization]
      response_metadata: [x-echo-rid, x-trail, x-echo-auth]
  - name: echo-body
    match: {path: "/all", methods: [POST]}
    grpc: {upstream: echo, proto: testdata/test.proto, method: fgtest.v1.Echo/Echo}
  - name: fail
    match: {path: "/fail", methods: [POST]}
    grpc: {upstream: echo, proto: testdata/test.proto, method: fgtest.v1.Echo/Fail}
  - name: sleep
    match: {path: "/sleep"}
    grpc: {upstream: echo, proto: testdata/test.proto, method: fgtest.v1.Echo/Sleep, timeout: 200ms}
  - name: library
    match: {path: "/lib/{rest:*}"}
    grpc: {upstream: echo, proto: testdata/test.proto, import_paths: [testdata], service: fgtest.v1.Library, strip_prefix: /lib}
  - name: retry
    match: {path: "/retry/{s}/{i32}"}
    grpc: {upstream: two, proto: testdata/test.proto, method: fgtest.v1.Echo/Echo}
`

type fixture struct {
	t   *testing.T
	srv *testServer
	gw  *coretest.Gateway
	b   *fgrpc.Builder
}

func newFixture(t *testing.T) *fixture {
	srv := startServer(t)
	cfg := strings.NewReplacer("ADDR", srv.addr, "CLOSED", closedAddr(t)).Replace(terminalConfig)
	b := &fgrpc.Builder{}
	gw := coretest.Start(t, cfg, core.Options{Terminals: []core.TerminalBuilder{b}}, nil)
	t.Cleanup(func() { gw.Stop(); b.Close() })
	return &fixture{t: t, srv: srv, gw: gw, b: b}
}

// do sends method uri with body and "Name: value" headers; it returns the
// status, the body and the response headers.
func (f *fixture) do(method, uri, body string, headers ...string) (int, string, *fasthttp.ResponseHeader) {
	f.t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://gw.local" + uri)
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if body != "" {
		req.Header.SetContentType("application/json")
		req.SetBodyString(body)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := f.gw.Client.DoTimeout(req, resp, 10*time.Second); err != nil {
		f.t.Fatalf("%s %s: %s", method, uri, err)
	}
	var h fasthttp.ResponseHeader
	resp.Header.CopyTo(&h)
	return resp.StatusCode(), string(resp.Body()), &h
}

// jsonEqual fails unless got and want are the same JSON value.
func jsonEqual(t *testing.T, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%s: body is not JSON: %s\n%s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: want is not JSON: %s", what, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("%s: body got\n%s\nwant\n%s", what, gb, wb)
	}
}

func TestTranscodeAllTypes(t *testing.T) {
	fx := newFixture(t)
	f := func(body, want string) {
		t.Helper()
		code, got, _ := fx.do("POST", "/all", body)
		if code != 200 {
			t.Fatalf("POST /all %s: status got %d; want 200; body %s", body, code, got)
		}
		jsonEqual(t, "POST /all "+body, got, want)
	}
	// Scalars of every kind; 64-bit integers are JSON strings.
	f(`{"i32":-1,"i64":"-2","u32":3,"u64":"4","s32":-5,"s64":"-6","f32":7,"f64":"8","sf32":-9,"sf64":"-10","fl":1.5,"db":2.25,"b":true,"s":"x","by":"AQID"}`,
		`{"i32":-1,"i64":"-2","u32":3,"u64":"4","s32":-5,"s64":"-6","f32":7,"f64":"8","sf32":-9,"sf64":"-10","fl":1.5,"db":2.25,"b":true,"s":"x","by":"AQID"}`)
	// Nested and repeated messages, enums, maps; lowerCamelCase input
	// names come back as proto names.
	f(`{"inner":{"name":"a","n":1},"inners":[{"name":"b"},{"n":2}],"color":"GREEN","counts":{"x":1,"y":2},"innerMap":{"k":{"name":"v"}}}`,
		`{"inner":{"name":"a","n":1},"inners":[{"name":"b"},{"n":2}],"color":"GREEN","counts":{"x":1,"y":2},"inner_map":{"k":{"name":"v"}}}`)
	f(`{"color":1}`, `{"color":"RED"}`)
	// Well-known types.
	f(`{"ts":"2024-01-02T03:04:05.500Z","dur":"1.5s","wi64":"7","ws":"w","wb":false,"st":{"a":[1,"b",null,{"c":true}]}}`,
		`{"ts":"2024-01-02T03:04:05.500Z","dur":"1.500s","wi64":"7","ws":"w","wb":false,"st":{"a":[1,"b",null,{"c":true}]}}`)
	// Defaults are left out.
	f(`{"i32":0,"s":"","b":false}`, `{}`)
	f(``, `{}`)
}

func TestTranscodeBadBody(t *testing.T) {
	fx := newFixture(t)
	f := func(body, wantField string) {
		t.Helper()
		before := fx.srv.calls.Load()
		code, got, _ := fx.do("POST", "/all", body)
		if code != 400 {
			t.Fatalf("POST /all %s: status got %d; want 400; body %s", body, code, got)
		}
		var e struct{ Error, Code string }
		if err := json.Unmarshal([]byte(got), &e); err != nil {
			t.Fatalf("POST /all %s: error body is not JSON: %s", body, got)
		}
		if e.Code != "INVALID_ARGUMENT" || !strings.Contains(e.Error, wantField) {
			t.Fatalf("POST /all %s: error got %q (%s); want INVALID_ARGUMENT naming %q", body, e.Error, e.Code, wantField)
		}
		if n := fx.srv.calls.Load(); n != before {
			t.Fatalf("POST /all %s: the upstream got %d calls; want none", body, n-before)
		}
	}
	f(`{"i32":"x"}`, "i32")
	f(`{"nope":1}`, "nope")
	f(`{"color":"BLUE"}`, "color")
	f(`{"i32":1`, "request body")
	f(`[1]`, "request body")
}

func TestTranscodePathQueryMetadata(t *testing.T) {
	fx := newFixture(t)
	f := func(method, uri string, headers []string, wantBody string, wantHeaders ...string) {
		t.Helper()
		code, got, h := fx.do(method, uri, "", headers...)
		if code != 200 {
			t.Fatalf("%s %s: status got %d; want 200; body %s", method, uri, code, got)
		}
		jsonEqual(t, method+" "+uri, got, wantBody)
		for _, hv := range wantHeaders {
			k, v, _ := strings.Cut(hv, ": ")
			if g := string(h.Peek(k)); g != v {
				t.Fatalf("%s %s: header %s got %q; want %q", method, uri, k, g, v)
			}
		}
	}
	f("GET", "/echo/hello%20world/42", nil, `{"s":"hello world","i32":42}`)
	// Query arguments set fields, dotted names nested ones, repeated
	// arguments repeated fields; unknown ones are ignored.
	f("GET", "/echo/a/1?u64=9&b=true&inner.name=n&tags=x&tags=y&color=RED&ts=2024-01-02T00:00:00Z&wi64=5&wb=true&unknown=1", nil,
		`{"s":"a","i32":1,"u64":"9","b":true,"inner":{"name":"n"},"tags":["x","y"],"color":"RED","ts":"2024-01-02T00:00:00Z","wi64":"5","wb":true}`)
	// Metadata both ways: allow-listed request headers go out, allow-listed
	// response metadata (headers and trailers) come back; x-hidden is not
	// listed.
	f("GET", "/echo/a/1", []string{"X-Request-ID: rid-1", "Authorization: Bearer t"}, `{"s":"a","i32":1}`,
		"X-Echo-Rid: rid-1", "X-Trail: t-rid-1", "X-Echo-Auth: Bearer t", "X-Hidden: ")
	// The body first, then the path.
	code, got, _ := fx.do("POST", "/echo/p/2", `{"s":"body","fl":0.5}`)
	if code != 200 {
		t.Fatalf("POST /echo/p/2: status got %d; body %s", code, got)
	}
	jsonEqual(t, "POST /echo/p/2", got, `{"s":"p","i32":2,"fl":0.5}`)
	// A path value that is not of the field's type.
	code, got, _ = fx.do("GET", "/echo/a/notanumber", "")
	if code != 400 || !strings.Contains(got, "i32") {
		t.Fatalf("GET /echo/a/notanumber: got %d %s; want 400 naming i32", code, got)
	}
}

func TestTranscodeErrors(t *testing.T) {
	fx := newFixture(t)
	f := func(code int, wantStatus int, wantCode string) {
		t.Helper()
		st, got, _ := fx.do("POST", "/fail", `{"i32":`+itoa(code)+`,"s":"it failed"}`, "X-Request-ID: rid-e")
		if st != wantStatus {
			t.Fatalf("code %d: status got %d; want %d; body %s", code, st, wantStatus, got)
		}
		jsonEqual(t, "code "+wantCode, got, `{"error":"it failed","code":"`+wantCode+`","status":`+itoa(wantStatus)+`,
			"details":[
			  {"@type":"type.googleapis.com/google.rpc.BadRequest","field_violations":[{"field":"sku","description":"unknown sku"}]},
			  {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"OUT_OF_STOCK","domain":"inventory.example.com"}],
			"request_id":"rid-e"}`)
	}
	f(1, 499, "CANCELLED")
	f(2, 500, "UNKNOWN")
	f(3, 400, "INVALID_ARGUMENT")
	f(5, 404, "NOT_FOUND")
	f(6, 409, "ALREADY_EXISTS")
	f(7, 403, "PERMISSION_DENIED")
	f(8, 429, "RESOURCE_EXHAUSTED")
	f(9, 400, "FAILED_PRECONDITION")
	f(10, 409, "ABORTED")
	f(11, 400, "OUT_OF_RANGE")
	f(12, 501, "UNIMPLEMENTED")
	f(13, 500, "INTERNAL")
	f(15, 500, "DATA_LOSS")
	f(16, 401, "UNAUTHENTICATED")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestDeadlineExceeded(t *testing.T) {
	fx := newFixture(t)
	start := time.Now()
	code, got, _ := fx.do("GET", "/sleep", "")
	if code != 504 {
		t.Fatalf("GET /sleep: status got %d; want 504; body %s", code, got)
	}
	select {
	case <-fx.srv.sleeping:
	default:
		t.Fatalf("GET /sleep: the upstream's Sleep never started")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("GET /sleep: answered after %s; want about the 200ms timeout", d)
	}
}

func TestRetryUnavailableToSecondTarget(t *testing.T) {
	fx := newFixture(t)
	for i := range 6 {
		code, got, _ := fx.do("GET", "/retry/r/"+itoa(i), "")
		if code != 200 {
			t.Fatalf("GET /retry #%d: status got %d; want 200 (the closed target retried on the other); body %s", i, code, got)
		}
		jsonEqual(t, "GET /retry", got, `{"s":"r"`+map[bool]string{true: "", false: `,"i32":` + itoa(i)}[i == 0]+`}`)
	}
}

func TestServiceAnnotations(t *testing.T) {
	fx := newFixture(t)
	f := func(method, uri, body string, wantStatus int, wantBody string) {
		t.Helper()
		code, got, _ := fx.do(method, uri, body)
		if code != wantStatus {
			t.Fatalf("%s %s: status got %d; want %d; body %s", method, uri, code, wantStatus, got)
		}
		if wantBody != "" {
			jsonEqual(t, method+" "+uri, got, wantBody)
		}
	}
	// {name=shelves/*/books/*}: a multi-segment variable; query into the
	// other fields.
	f("GET", "/lib/v1/shelves/s1/books/b1?view=FULL", "", 200, `{"name":"shelves/s1/books/b1","title":"Title of shelves/s1/books/b1 (FULL)"}`)
	f("GET", "/lib/v1/shelves/s1/books/missing", "", 404, "")
	// body: "book" maps the body to a field.
	f("POST", "/lib/v1/shelves/s2/books", `{"title":"Dune"}`, 200, `{"name":"shelves/s2/books/new","title":"Dune"}`)
	// response_body: "books" writes one field.
	f("GET", "/lib/v1/shelves/s3/books?page_size=2", "", 200, `[{"name":"shelves/s3/books/a"},{"name":"shelves/s3/books/b"}]`)
	// An additional binding, with a verb, has its own (no) response_body.
	f("GET", "/lib/v1/books:all", "", 200, `{"next":"token"}`)
	// body: "*" and {field.sub} variables.
	f("PUT", "/lib/v1/move/s9/b9", `{"book":{"title":"T"}}`, 200, `{"name":"b9","title":"T","shelf":{"id":"s9"}}`)
	// No binding: wrong method, unknown path, outside the prefix.
	f("DELETE", "/lib/v1/shelves/s1/books/b1", "", 404, "")
	f("GET", "/lib/v2/nothing", "", 404, "")
	f("GET", "/lib/v1/shelves/s1/books/b1/extra", "", 404, "")
}

func TestMetrics(t *testing.T) {
	fx := newFixture(t)
	fx.do("GET", "/echo/a/1", "")
	fx.do("GET", "/echo/a/2", "")
	fx.do("POST", "/fail", `{"i32":5}`)
	fx.do("POST", "/all", `{"i32":"x"}`)
	fx.do("GET", "/sleep", "")
	f := func(route, code string, want uint64) {
		t.Helper()
		name := `fastgate_grpc_requests_total{route="` + route + `",code="` + code + `"}`
		if got := fx.gw.Metrics().Set().GetOrCreateCounter(name).Get(); got != want {
			t.Fatalf("%s: got %d; want %d", name, got, want)
		}
	}
	f("echo", "OK", 2)
	f("fail", "NOT_FOUND", 1)
	f("echo-body", "INVALID_ARGUMENT", 1)
	f("sleep", "DEADLINE_EXCEEDED", 1)
	f("echo", "UNAVAILABLE", 0)
}
