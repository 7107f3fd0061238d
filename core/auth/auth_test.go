package auth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core/coretest"
)

// check sends GET uri with headers through h and checks the status; for a
// 200, that the upstream saw X-Consumer consumer; for a 401 or 403, the
// JSON error text and the WWW-Authenticate challenges (joined by " | ").
func check(t *testing.T, h *harness, uri string, headers []string, status int, want string) {
	t.Helper()
	before, _, _ := h.up.seen("")
	resp := h.get(uri, headers...)
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != status {
		t.Fatalf("GET %s %q: status got %d; want %d; body %s", uri, headers, resp.StatusCode(), status, resp.Body())
	}
	n, consumer, _ := h.up.seen("X-Consumer")
	if status == fasthttp.StatusOK {
		if n != before+1 || consumer != want {
			t.Fatalf("GET %s %q: upstream got %d requests with X-Consumer %q; want 1 with %q", uri, headers, n-before, consumer, want)
		}
		return
	}
	if n != before {
		t.Fatalf("GET %s %q: a %d reached the upstream", uri, headers, status)
	}
	var body struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(resp.Body(), &body); err != nil || body.Status != status {
		t.Fatalf("GET %s %q: body %q is not the gateway's JSON error %d: %v", uri, headers, resp.Body(), status, err)
	}
	errText, challenge, _ := strings.Cut(want, " / ")
	if body.Error != errText {
		t.Fatalf("GET %s %q: error got %q; want %q", uri, headers, body.Error, errText)
	}
	if got := challenges(resp); got != challenge {
		t.Fatalf("GET %s %q: WWW-Authenticate got\n%s\nwant\n%s", uri, headers, got, challenge)
	}
}

const (
	chAPIKey = `APIKey realm="fastgate", header="X-API-Key"`
	chBasic  = `Basic realm="fastgate", charset="UTF-8"`
	chBearer = `Bearer realm="fastgate"`
)

func TestAPIKey(t *testing.T) {
	h := newHarness(t, `
api_key: {query: api_key, bearer: true}
routes:
  - {upstream: users, auth: {any_of: [api_key]}}
`)
	f := func(uri string, headers []string, status int, want string) {
		t.Helper()
		check(t, h, uri, headers, status, want)
	}
	f("/x", nil, 401, "authentication required / "+chAPIKey)
	f("/x", []string{"X-API-Key: wrong-key-0123456789"}, 401, "invalid credentials / "+chAPIKey)
	f("/x", []string{"X-API-Key: " + billingKey + "x"}, 401, "invalid credentials / "+chAPIKey)
	f("/x", []string{"X-API-Key: " + billingKey}, 200, "billing")
	f("/x", []string{"x-api-key: " + opsKey}, 200, "ops")
	f("/x?api_key="+billingKey, nil, 200, "billing")
	f("/x?api_key=nope", nil, 401, "invalid credentials / "+chAPIKey)
	f("/x", []string{"Authorization: Bearer " + opsKey}, 200, "ops")
	f("/x", []string{"Authorization: bearer   " + opsKey + "  "}, 200, "ops")
	f("/x", []string{"Authorization: Bearer nope"}, 401, "invalid credentials / "+chAPIKey)
	f("/x", []string{"Authorization: Basic " + opsKey}, 401, "authentication required / "+chAPIKey)
	// the header wins over the query argument and the bearer token
	f("/x?api_key=nope", []string{"X-API-Key: " + billingKey, "Authorization: Bearer nope"}, 200, "billing")
	f("/x?api_key="+billingKey, []string{"X-API-Key: nope"}, 401, "invalid credentials / "+chAPIKey)
}

func TestBasic(t *testing.T) {
	h := newHarness(t, `
routes:
  - {upstream: users, auth: {any_of: [basic], realm: "my api"}}
`)
	ch := `Basic realm="my api", charset="UTF-8"`
	f := func(headers []string, status int, want string) {
		t.Helper()
		check(t, h, "/x", headers, status, want)
	}
	f(nil, 401, "authentication required / "+ch)
	f([]string{"Authorization: Bearer x"}, 401, "authentication required / "+ch)
	f([]string{"Authorization: " + basicAuth("ops", "wrong")}, 401, "invalid credentials / "+ch)
	f([]string{"Authorization: " + basicAuth("nobody", testPassword)}, 401, "invalid credentials / "+ch)
	f([]string{"Authorization: Basic !!!"}, 401, "invalid credentials / "+ch)
	f([]string{"Authorization: Basic"}, 401, "invalid credentials / "+ch)
	f([]string{"Authorization: Basic " + strings.Repeat("QUFB", 400)}, 401, "invalid credentials / "+ch)
	f([]string{"Authorization: " + basicAuth("ops", testPassword)}, 200, "ops")
	f([]string{"Authorization: " + basicAuth("mobile app", testPassword)}, 200, "mobile")
	// cached now: the right password still passes, a wrong one still fails
	f([]string{"Authorization: " + basicAuth("ops", testPassword)}, 200, "ops")
	f([]string{"Authorization: " + basicAuth("ops", testPassword+"x")}, 401, "invalid credentials / "+ch)
	f([]string{"Authorization: basic " + strings.TrimPrefix(basicAuth("ops", testPassword), "Basic ")}, 200, "ops")
}

// TestBasicCache checks that a password is bcrypt-checked once: the
// cached digest answers after that, and a wrong password never is.
func TestBasicCache(t *testing.T) {
	b := NewBuilder(Options{})
	c := newConsumers(b, coretest.Config(t, base+`routes: [{upstream: users}]`).Consumers)
	u := c.users["ops"]
	if u.ok.Load() != nil {
		t.Fatalf("a fresh user has a cached password")
	}
	if _, o := c.basic([]byte("ops"), []byte("wrong")); o != invalid || u.ok.Load() != nil {
		t.Fatalf("wrong password: got %v, cached %v; want invalid, nothing cached", o, u.ok.Load())
	}
	if got, o := c.basic([]byte("ops"), []byte(testPassword)); o != succeeded || got.Name != "ops" || u.ok.Load() == nil {
		t.Fatalf("right password: got %v %v, cached %v; want ops, cached", got, o, u.ok.Load())
	}
	// replace the hash: a cached password no longer needs it
	u.hash = []byte("not a bcrypt hash")
	if _, o := c.basic([]byte("ops"), []byte(testPassword)); o != succeeded {
		t.Fatalf("cached password: got %v; want succeeded without bcrypt", o)
	}
	if _, o := c.basic([]byte("ops"), []byte("wrong")); o != invalid {
		t.Fatalf("wrong password after caching: got %v; want invalid", o)
	}
}

func TestJWT(t *testing.T) {
	h := newHarness(t, `
routes:
  - {upstream: users, match: {path: /any}, auth: {any_of: ["jwt:corp"]}}
  - {upstream: users, match: {path: /claims}, auth: {any_of: ["jwt:corp"], claims: {scope: read, tier: gold}}}
  - {upstream: users, match: {path: /ops}, auth: {any_of: ["jwt:corp"], groups: [ops]}}
`)
	f := func(uri string, headers []string, status int, want string) {
		t.Helper()
		check(t, h, uri, headers, status, want)
	}
	f("/any", nil, 401, "authentication required / "+chBearer)
	f("/any", []string{"Authorization: Bearer not.a.token"}, 401,
		`invalid credentials / Bearer realm="fastgate", error="invalid_token", error_description="token malformed"`)
	f("/any", []string{"Authorization: Bearer " + token(t, "alice", nil, nil)}, 200, "alice")
	// a subject that is a configured consumer is that consumer
	f("/any", []string{"Authorization: Bearer " + token(t, "billing", nil, nil)}, 200, "billing")

	read := token(t, "alice", nil, map[string]any{"scope": "read write", "tier": "gold"})
	f("/claims", []string{"Authorization: Bearer " + read}, 200, "alice")
	f("/claims", []string{"Authorization: Bearer " + token(t, "alice", nil, map[string]any{"scope": "write", "tier": "gold"})}, 403,
		"token lacks a claim this route requires / ")
	f("/claims", []string{"Authorization: Bearer " + token(t, "alice", nil, map[string]any{"scope": "read"})}, 403,
		"token lacks a claim this route requires / ")

	// groups: the token's, plus a configured consumer's own
	f("/ops", []string{"Authorization: Bearer " + token(t, "alice", []string{"dev"}, nil)}, 403, "consumer not allowed on this route / ")
	f("/ops", []string{"Authorization: Bearer " + token(t, "alice", []string{"dev", "ops"}, nil)}, 200, "alice")
	f("/ops", []string{"Authorization: Bearer " + token(t, "ops", nil, nil)}, 200, "ops")
	f("/ops", []string{"Authorization: Bearer " + token(t, "billing", []string{"ops"}, nil)}, 200, "billing")
	_, groups, _ := h.up.seen("X-Consumer-Groups")
	if groups != "internal,ops" {
		t.Fatalf("X-Consumer-Groups of billing with a token of group ops: got %q; want %q", groups, "internal,ops")
	}
}

func TestCombinations(t *testing.T) {
	h := newHarness(t, `
routes:
  - {upstream: users, match: {path: /any}, auth: {any_of: [api_key, basic, "jwt:corp"]}}
  - {upstream: users, match: {path: /all}, auth: {all_of: [api_key, basic]}}
  - {upstream: users, match: {path: /both}, auth: {all_of: ["jwt:corp"], any_of: [api_key, basic]}}
`)
	f := func(uri string, headers []string, status int, want string) {
		t.Helper()
		check(t, h, uri, headers, status, want)
	}
	all3 := chAPIKey + " | " + chBasic + " | " + chBearer
	key := "X-API-Key: " + billingKey
	opsBasic := "Authorization: " + basicAuth("ops", testPassword)
	f("/any", nil, 401, "authentication required / "+all3)
	f("/any", []string{"X-API-Key: nope-nope-nope-nope"}, 401, "invalid credentials / "+all3)
	f("/any", []string{key}, 200, "billing")
	f("/any", []string{opsBasic}, 200, "ops")
	f("/any", []string{"Authorization: Bearer " + token(t, "alice", nil, nil)}, 200, "alice")
	// the first method that succeeds names the consumer
	f("/any", []string{key, opsBasic}, 200, "billing")
	f("/any", []string{"X-API-Key: nope-nope-nope-nope", opsBasic}, 200, "ops")
	f("/any", []string{"Authorization: Bearer bad"}, 401,
		`invalid credentials / `+chAPIKey+" | "+chBasic+" | "+chBearer+`, error="invalid_token", error_description="token malformed"`)

	both := chAPIKey + " | " + chBasic
	f("/all", []string{key}, 401, "authentication required / "+both)
	f("/all", []string{opsBasic}, 401, "authentication required / "+both)
	f("/all", []string{"X-API-Key: " + opsKey, "Authorization: " + basicAuth("ops", "bad")}, 401, "invalid credentials / "+both)
	f("/all", []string{"X-API-Key: " + opsKey, opsBasic}, 200, "ops")
	f("/all", []string{key, opsBasic}, 401, "credentials name different consumers / "+both)

	tok := "Authorization: Bearer " + token(t, "ops", nil, nil)
	f("/both", []string{"X-API-Key: " + opsKey}, 401, "authentication required / "+chAPIKey+" | "+chBasic+" | "+chBearer)
	f("/both", []string{tok}, 401, "authentication required / "+chAPIKey+" | "+chBasic+" | "+chBearer)
	f("/both", []string{tok, "X-API-Key: " + opsKey}, 200, "ops")
	f("/both", []string{tok, key}, 401, "credentials name different consumers / "+chAPIKey+" | "+chBasic+" | "+chBearer)
	f("/both", []string{"Authorization: Bearer " + token(t, "alice", nil, nil), key}, 200, "alice")
}

func TestGroups(t *testing.T) {
	h := newHarness(t, `
routes:
  - {upstream: users, auth: {any_of: [api_key, basic], groups: [ops, admins]}}
`)
	check(t, h, "/x", []string{"X-API-Key: " + billingKey}, 403, "consumer not allowed on this route / ")
	check(t, h, "/x", []string{"Authorization: " + basicAuth("mobile app", testPassword)}, 403, "consumer not allowed on this route / ")
	check(t, h, "/x", []string{"X-API-Key: " + opsKey}, 200, "ops")
}

// TestUpstreamHeaders checks what reaches the upstream: no credential,
// the consumer headers set and a client's own copies replaced, and with
// keep_credentials the credentials kept.
func TestUpstreamHeaders(t *testing.T) {
	h := newHarness(t, `
  - {name: q, algorithms: [HS256], secret: "`+testSecret+`", from: {query: access_token}}
api_key: {query: api_key, bearer: true}
routes:
  - {upstream: users, match: {path: /strip}, auth: {any_of: [api_key, basic, "jwt:corp"]}}
  - {upstream: users, match: {path: /keep}, auth: {any_of: [api_key, basic], keep_credentials: true, consumer_header: X-Who, groups_header: X-Who-Groups}}
  - {upstream: users, match: {path: /query}, auth: {any_of: ["jwt:q"]}}
`)
	f := func(uri string, headers []string, want map[string]string, wantURI string) {
		t.Helper()
		resp := h.get(uri, headers...)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != 200 {
			t.Fatalf("GET %s %q: status %d; want 200; body %s", uri, headers, resp.StatusCode(), resp.Body())
		}
		for name, v := range want {
			if _, got, _ := h.up.seen(name); got != v {
				t.Fatalf("GET %s %q: upstream got %s %q; want %q", uri, headers, name, got, v)
			}
		}
		if _, _, got := h.up.seen(""); got != wantURI {
			t.Fatalf("GET %s %q: upstream URI got %q; want %q", uri, headers, got, wantURI)
		}
	}
	none := map[string]string{"X-API-Key": "", "Authorization": "", "X-Consumer": "ops", "X-Consumer-Groups": "ops,internal"}
	forged := []string{"X-Consumer: root", "X-Consumer-Groups: admins", "X-Consumer: root2"}
	f("/strip", append([]string{"X-API-Key: " + opsKey}, forged...), none, "/strip")
	f("/strip?a=1&api_key="+opsKey+"&b=2", forged, none, "/strip?a=1&b=2")
	f("/strip", append([]string{"Authorization: Bearer " + opsKey}, forged...), none, "/strip")
	f("/strip", append([]string{"Authorization: " + basicAuth("ops", testPassword)}, forged...), none, "/strip")
	f("/strip", append([]string{"Authorization: Bearer " + token(t, "ops", nil, nil)}, forged...), none, "/strip")
	// a consumer without groups: the client's groups header is removed
	f("/strip", []string{"Authorization: " + basicAuth("mobile app", testPassword), "X-Consumer-Groups: admins"},
		map[string]string{"Authorization": "", "X-Consumer": "mobile", "X-Consumer-Groups": ""}, "/strip")
	// credentials of every listed method go, also when another one won
	f("/strip", []string{"X-API-Key: " + billingKey, "Authorization: " + basicAuth("ops", "whatever")},
		map[string]string{"X-API-Key": "", "Authorization": "", "X-Consumer": "billing"}, "/strip")

	f("/query?a=1&access_token="+token(t, "alice", nil, nil)+"&b=2", nil,
		map[string]string{"X-Consumer": "alice"}, "/query?a=1&b=2")

	f("/keep?api_key=x", []string{"X-API-Key: " + opsKey, "X-Who: root"},
		map[string]string{"X-API-Key": opsKey, "X-Who": "ops", "X-Who-Groups": "ops,internal"}, "/keep?api_key=x")
	basic := basicAuth("ops", testPassword)
	f("/keep", []string{"Authorization: " + basic}, map[string]string{"Authorization": basic, "X-Who": "ops"}, "/keep")
}

// TestMetrics checks the failure and consumer counters of a route.
func TestMetrics(t *testing.T) {
	h := newHarness(t, `
routes:
  - {name: m, upstream: users, auth: {any_of: [api_key, "jwt:corp"], groups: [internal, dev]}}
`)
	for _, hv := range [][]string{
		nil,
		{"X-API-Key: nope-nope-nope-nope"},
		{"X-API-Key: " + billingKey},
		{"X-API-Key: " + billingKey},
		{"Authorization: Bearer " + token(t, "alice", []string{"dev"}, nil)},
		{"Authorization: Bearer " + token(t, "bob", nil, nil)},
	} {
		fasthttp.ReleaseResponse(h.get("/x", hv...))
	}
	set := h.g.Gateway.Metrics().Set()
	f := func(name string, want uint64) {
		t.Helper()
		if got := set.GetOrCreateCounter(name).Get(); got != want {
			t.Fatalf("metric %s: got %d; want %d", name, got, want)
		}
	}
	f(`fastgate_auth_failures_total{route="m",reason="missing"}`, 1)
	f(`fastgate_auth_failures_total{route="m",reason="invalid"}`, 1)
	f(`fastgate_auth_failures_total{route="m",reason="forbidden"}`, 1)
	f(`fastgate_consumer_requests_total{route="m",consumer="billing"}`, 2)
	f(`fastgate_consumer_requests_total{route="m",consumer="jwt:corp"}`, 1)
}

// TestVerifiersShared checks the verifier registry: routes of one issuer
// share its verifier, a reload that keeps the issuer's config keeps it
// (also for a route whose auth changed), and it is closed once no route
// uses it.
func TestVerifiersShared(t *testing.T) {
	routes := `
routes:
  - {upstream: users, match: {path: /a}, auth: {any_of: ["jwt:corp"]}}
  - {upstream: users, match: {path: /b}, auth: {any_of: ["jwt:corp", api_key]}}
`
	h := newHarness(t, routes)
	verifier := func() any {
		h.b.mu.Lock()
		defer h.b.mu.Unlock()
		if len(h.b.verifiers) != 1 {
			t.Fatalf("got %d verifiers; want 1", len(h.b.verifiers))
		}
		return h.b.verifiers[0].v
	}
	first := verifier()
	tok := "Authorization: Bearer " + token(t, "alice", nil, nil)
	check(t, h, "/a", []string{tok}, 200, "alice")

	apply := func(cfg string) {
		t.Helper()
		if err := h.g.Gateway.Apply(coretest.Config(t, base+cfg)); err != nil {
			t.Fatal(err)
		}
	}
	apply(strings.Replace(routes, `"jwt:corp"]}}`, `"jwt:corp"], groups: [g]}}`, 1))
	if v := verifier(); v != first {
		t.Fatalf("a reload with the same issuer made a new verifier")
	}
	check(t, h, "/b", []string{tok}, 200, "alice")

	apply(`routes: [{upstream: users, auth: {any_of: [api_key]}}]`)
	// closed once the old snapshots have drained; the bound only keeps a
	// broken build from hanging.
	deadline := time.Now().Add(20 * time.Second)
	for h.b.verifierCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("got %d verifiers after the last jwt route went; want 0", h.b.verifierCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
