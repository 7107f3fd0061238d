package aggregate_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/aggregate"
	"fastgate/core/coretest"
)

const aggregateConfig = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
  orders: {targets: [{url: "http://10.0.0.2:80"}]}
  flaky:
    targets: [{url: "http://10.0.0.4:80"}, {url: "http://10.0.0.5:80"}]
    retries: {attempts: 2, on: [503], backoff: {base: 1ms, max: 1ms}}
  down: {targets: [{url: "http://10.0.0.9:80"}], retries: {attempts: 1}}
  streamy: {targets: [{url: "http://10.0.0.6:80"}], pool: {max_buffered_body: 1KiB}}
routes:
  - name: dash
    match: {path: "/dash/{id}"}
    aggregate:
      backends:
        - {upstream: users, path: "/users/{id}", group: user, required: true, deny: [password_hash, address.zip], rename: {"address.city": town}}
        - {upstream: orders, path: "/orders?user={id}", group: orders, collection: true, allow: [id, total]}
        - {upstream: users, path: "/users/{resp0.manager_id}", group: manager, allow: [name]}
  - name: root
    match: {path: "/root/{id}"}
    aggregate:
      status: 203
      backends:
        - {upstream: users, path: "/users/{id}", allow: [id, name, address.city]}
        - {upstream: users, path: "/wrapped", target: data.profile}
        - {upstream: users, path: "/wrapped", target: data.list, collection: true, group: list, rename: {v: value}}
  - name: failures
    match: {path: /failures}
    aggregate:
      max_body: 1KiB
      backends:
        - {upstream: orders, path: /html, group: html}
        - {upstream: orders, path: /big, group: big}
        - {upstream: down, path: /x}
        - {upstream: users, path: /users/1, group: ok, allow: [name]}
        - {upstream: orders, path: /garbage, group: garbage}
        - {upstream: orders, path: /orders?user=1, target: "0.sku"}
        - {upstream: users, path: /users/1, group: notarray, collection: true}
        - {upstream: users, path: "/users/{resp6.nope}", group: dependent}
        - {upstream: users, path: "/users/{resp3.nope}", group: missing}
  - name: required-html
    match: {path: /required-html}
    aggregate: {backends: [{upstream: users, path: /users/1}, {upstream: orders, path: /html, required: true}]}
  - name: required-down
    match: {path: /required-down}
    aggregate: {backends: [{upstream: down, path: /x, group: d, required: true}]}
  - name: slow
    match: {path: "/slow/{req}"}
    aggregate:
      timeout: 5s
      backends:
        - {upstream: orders, path: /block, group: slow, timeout: 30ms}
        - {upstream: users, path: /users/1, group: user, allow: [name]}
  - name: slow-required
    match: {path: /slow-required}
    aggregate:
      timeout: 30ms
      backends: [{upstream: orders, path: /block, group: slow, required: true}]
  - name: headers
    match: {path: /headers}
    aggregate:
      backends:
        - {upstream: users, path: /echo, group: plain}
        - {upstream: users, path: /echo, group: listed, headers: [Authorization, X-Keep]}
  - name: flaky
    match: {path: /flaky}
    aggregate: {backends: [{upstream: flaky, path: /ok, group: f, required: true}]}
  - name: numbers
    match: {path: /numbers}
    aggregate:
      backends:
        - {upstream: users, path: /big, group: raw}
        - {upstream: users, path: /big}
        - {upstream: users, path: "/echo?id={resp1.id}", group: echo}
  - name: whole
    match: {path: /whole}
    aggregate:
      backends:
        - {upstream: users, path: /users/1, group: user}
        - {upstream: orders, path: "/orders?user=1", group: orders, collection: true}
        - {upstream: users, path: /wrapped, group: wrapped}
  - name: whole-partial
    match: {path: /whole-partial}
    aggregate:
      backends:
        - {upstream: users, path: /users/1, group: user}
        - {upstream: users, path: /users/404, group: missing}
        - {upstream: orders, path: /html, group: html}
  - name: stream
    match: {path: "/stream/{size}"}
    aggregate:
      max_body: 16KiB
      backends: [{upstream: streamy, path: "/{size}", group: s, required: true}]
`

// block is closed when the test ends: the /block handler waits on it, so
// a backend timeout needs no sleep.
func upstreams(block chan struct{}) map[string]fasthttp.RequestHandler {
	jsonBody := func(ctx *fasthttp.RequestCtx, body string) {
		ctx.SetContentType("application/json")
		ctx.SetBodyString(body)
	}
	users := func(ctx *fasthttp.RequestCtx) {
		switch p := string(ctx.Path()); p {
		case "/users/1":
			jsonBody(ctx, `{"id":1,"name":"Ada","password_hash":"x","manager_id":2,"address":{"city":"London","zip":"N1"}}`)
		case "/users/2":
			jsonBody(ctx, `{"id":2,"name":"Bob","password_hash":"y","manager_id":"99","address":{"city":"Paris"}}`)
		case "/wrapped":
			jsonBody(ctx, `{"data":{"profile":{"bio":"hi","id":"shadowed"},"list":[{"v":1},{"v":2},3]}}`)
		case "/big":
			jsonBody(ctx, `{"id":12345678901234567890, "f": 1.50}`)
		case "/echo":
			h := &ctx.Request.Header
			out, _ := json.Marshal(map[string]string{
				"authorization": string(h.Peek("Authorization")), "keep": string(h.Peek("X-Keep")),
				"cookie": string(h.Peek("Cookie")), "request_id": string(h.Peek("X-Request-ID")),
				"xff": string(h.Peek("X-Forwarded-For")), "query": string(ctx.QueryArgs().Peek("id")),
				"method": string(ctx.Method()),
			})
			jsonBody(ctx, string(out))
		default:
			ctx.SetStatusCode(404)
			jsonBody(ctx, `{"error":"no such user"}`)
		}
	}
	orders := func(ctx *fasthttp.RequestCtx) {
		switch string(ctx.Path()) {
		case "/orders":
			if string(ctx.QueryArgs().Peek("user")) == "1" {
				jsonBody(ctx, `[{"id":10,"total":5,"sku":"a"},{"id":11,"total":7,"sku":"b"}]`)
			} else {
				jsonBody(ctx, `[]`)
			}
		case "/html":
			ctx.SetContentType("text/html")
			ctx.SetBodyString("<p>hi</p>")
		case "/big":
			jsonBody(ctx, `"`+strings.Repeat("x", 2000)+`"`)
		case "/garbage":
			jsonBody(ctx, `{"a":`)
		case "/block":
			<-block
			jsonBody(ctx, `{}`)
		}
	}
	streamy := func(ctx *fasthttp.RequestCtx) {
		n := 0
		switch string(ctx.Path()) {
		case "/small":
			n = 4000
		case "/large":
			n = 40000
		case "/chunked":
			ctx.SetContentType("application/json")
			ctx.SetBodyStream(strings.NewReader(`"`+strings.Repeat("y", 40000)+`"`), -1)
			return
		}
		jsonBody(ctx, `"`+strings.Repeat("y", n)+`"`)
	}
	return map[string]fasthttp.RequestHandler{
		"10.0.0.1:80": users,
		"10.0.0.2:80": orders,
		"10.0.0.4:80": func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) },
		"10.0.0.5:80": func(ctx *fasthttp.RequestCtx) { jsonBody(ctx, `{"ok":true}`) },
		"10.0.0.6:80": streamy,
	}
}

func start(t *testing.T) *coretest.Gateway {
	block := make(chan struct{})
	gw := coretest.Start(t, aggregateConfig, core.Options{Terminals: []core.TerminalBuilder{aggregate.Builder{}}}, upstreams(block))
	t.Cleanup(func() { close(block) }) // before the gateway's Stop, which waits for the handlers
	return gw
}

// check sends GET uri and compares the status, the body (JSON compared
// by value when want is JSON) and X-Fastgate-Failed.
func check(t *testing.T, gw *coretest.Gateway, uri string, status int, body, failed string, headers ...string) {
	t.Helper()
	resp := gw.Do("GET", "http://gw"+uri, headers...)
	defer fasthttp.ReleaseResponse(resp)
	got := string(resp.Body())
	if resp.StatusCode() != status {
		t.Fatalf("GET %s: got status %d; want %d; body %s", uri, resp.StatusCode(), status, got)
	}
	if ct := string(resp.Header.ContentType()); ct != "application/json" {
		t.Fatalf("GET %s: got Content-Type %q; want application/json", uri, ct)
	}
	if resp.Header.ContentLength() != len(resp.Body()) {
		t.Fatalf("GET %s: got Content-Length %d; want %d", uri, resp.Header.ContentLength(), len(resp.Body()))
	}
	if len(resp.Header.Peek("X-Request-ID")) == 0 {
		t.Fatalf("GET %s: no X-Request-ID", uri)
	}
	if got != body && !sameJSON(got, body) {
		t.Fatalf("GET %s: got body\n%s\nwant\n%s", uri, got, body)
	}
	partial := string(resp.Header.Peek("X-Fastgate-Partial"))
	if f := string(resp.Header.Peek("X-Fastgate-Failed")); f != failed || (failed != "") != (partial == "true") {
		t.Fatalf("GET %s: got X-Fastgate-Failed %q, X-Fastgate-Partial %q; want %q", uri, f, partial, failed)
	}
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

func TestMerge(t *testing.T) {
	gw := start(t)
	// groups, deny and rename with dotted paths, a collection with allow,
	// and a backend waiting for a field of the first one
	check(t, gw, "/dash/1", 200,
		`{"manager":{"name":"Bob"},"orders":[{"id":10,"total":5},{"id":11,"total":7}],"user":{"address":{"town":"London"},"id":1,"manager_id":2,"name":"Ada"}}`, "")
	// the manager (user 99) does not exist: a partial answer
	check(t, gw, "/dash/2", 200, `{"orders":[],"user":{"address":{"town":"Paris"},"id":2,"manager_id":"99","name":"Bob"}}`, "manager")
	// the required user does not exist: 502 naming it and the status
	check(t, gw, "/dash/7", 502, `{"error":"aggregate: backend user (upstream users): answered status 404","status":502,"request_id":"rid-1"}`, "", "X-Request-ID: rid-1")
	// root merges in backend order (the later id wins), allow with a
	// dotted path, target, a collection under target with rename per element
	check(t, gw, "/root/1", 203, `{"id":"shadowed","name":"Ada","address":{"city":"London"},"bio":"hi","list":[{"value":1},{"value":2},3]}`, "")
}

func TestWhole(t *testing.T) {
	gw := start(t)
	check(t, gw, "/whole", 200, `{"orders":[{"id":10,"total":5,"sku":"a"},{"id":11,"total":7,"sku":"b"}],`+
		`"user":{"id":1,"name":"Ada","password_hash":"x","manager_id":2,"address":{"city":"London","zip":"N1"}},`+
		`"wrapped":{"data":{"profile":{"bio":"hi","id":"shadowed"},"list":[{"v":1},{"v":2},3]}}}`, "")
	check(t, gw, "/whole-partial", 200, `{"user":{"id":1,"name":"Ada","password_hash":"x","manager_id":2,"address":{"city":"London","zip":"N1"}}}`, "missing, html")
}

func TestFailures(t *testing.T) {
	gw := start(t)
	// Content-Type text/html, over max_body, connection refused, invalid
	// JSON, a target that is not an object for the root, an object as a
	// collection, a dependency that failed, a missing field
	check(t, gw, "/failures", 200, `{"ok":{"name":"Ada"}}`, "html, big, backends[2], garbage, backends[5], notarray, dependent, missing")
	check(t, gw, "/required-html", 502, `{"error":"aggregate: backend backends[1] (upstream orders): the response is not JSON","status":502,"request_id":"r2"}`, "", "X-Request-ID: r2")
	for _, b := range []string{"html", "big", "backends[2]", "garbage", "backends[5]", "notarray", "dependent", "missing"} {
		name := `fastgate_aggregate_backend_failures_total{route="failures",backend="` + b + `"}`
		if got := gw.Metrics().Set().GetOrCreateCounter(name).Get(); got != 1 {
			t.Fatalf("%s: got %d; want 1", name, got)
		}
	}
	check(t, gw, "/required-down", 502, `{"error":"aggregate: backend d (upstream down): upstream connection failed","status":502,"request_id":"r3"}`, "", "X-Request-ID: r3")
}

func TestTimeout(t *testing.T) {
	gw := start(t)
	check(t, gw, "/slow/1", 200, `{"user":{"name":"Ada"}}`, "slow")
	check(t, gw, "/slow-required", 504, `{"error":"aggregate: backend slow (upstream orders): upstream timed out","status":504,"request_id":"r4"}`, "", "X-Request-ID: r4")
}

func TestHeaders(t *testing.T) {
	gw := start(t)
	check(t, gw, "/headers", 200, `{
		"plain":{"authorization":"","keep":"","cookie":"","request_id":"rid-9","xff":"0.0.0.0","query":"","method":"GET"},
		"listed":{"authorization":"Bearer t","keep":"k","cookie":"","request_id":"rid-9","xff":"0.0.0.0","query":"","method":"GET"}}`,
		"", "Authorization: Bearer t", "X-Keep: k", "Cookie: c=1", "X-Request-ID: rid-9")
}

func TestRetries(t *testing.T) {
	gw := start(t)
	// one target answers 503, the other 200: the upstream's retry makes
	// every aggregate complete, whichever target the balancer picks first
	for range 4 {
		check(t, gw, "/flaky", 200, `{"f":{"ok":true}}`, "")
	}
}

func TestNumbers(t *testing.T) {
	gw := start(t)
	// digits are kept as they are, whether the body is placed whole or
	// decoded, and a number field fills a path
	check(t, gw, "/numbers", 200, `{"echo":{"authorization":"","cookie":"","keep":"","method":"GET","query":"12345678901234567890","request_id":"r5","xff":"0.0.0.0"},"f":1.50,"id":12345678901234567890,"raw":{"id":12345678901234567890,"f":1.50}}`, "", "X-Request-ID: r5")
}

func TestStreamedBody(t *testing.T) {
	gw := start(t)
	check(t, gw, "/stream/small", 200, `{"s":"`+strings.Repeat("y", 4000)+`"}`, "")
	check(t, gw, "/stream/large", 502, `{"error":"aggregate: backend s (upstream streamy): the response body exceeds max_body","status":502,"request_id":"r6"}`, "", "X-Request-ID: r6")
	check(t, gw, "/stream/chunked", 502, `{"error":"aggregate: backend s (upstream streamy): the response body exceeds max_body","status":502,"request_id":"r7"}`, "", "X-Request-ID: r7")
	check(t, gw, "/stream/small", 200, `{"s":"`+strings.Repeat("y", 4000)+`"}`, "")
}

// TestConcurrent runs fan-outs side by side, dependent calls included,
// through the shared workers (run it with -race).
func TestConcurrent(t *testing.T) {
	gw := start(t)
	const want = `{"manager":{"name":"Bob"},"orders":[{"id":10,"total":5},{"id":11,"total":7}],"user":{"address":{"town":"London"},"id":1,"manager_id":2,"name":"Ada"}}`
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for range 50 {
				req.SetRequestURI("http://gw/dash/1")
				if err := gw.Client.Do(req, resp); err != nil {
					errs <- err.Error()
					return
				}
				if got := string(resp.Body()); got != want {
					errs <- "got " + got + "; want " + want
					return
				}
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
}
