package main

import (
	"encoding/base64"
	"io"
	"strings"
	"testing"
)

// Credentials of TestAuth: authBcrypt is bcrypt("open-sesame", cost 4).
const (
	authBcrypt = "$2a$04$th/QcBZKJ1f22G6wMqaAd./Z1d3fxUFkBks3wM3POE.WPUK22BT1m"
	authKey    = "billing-key-0123456789"
	authOpsKey = "ops-key-0123456789abcd"
)

// TestAuth runs route auth in the real binary: each 401 and 403 with its
// WWW-Authenticate challenges, the consumer headers set (a client's copy
// replaced) and no credential reaching the upstream.
func TestAuth(t *testing.T) {
	t.Setenv("FASTGATE_TEST_BILLING_KEY", authKey)
	echo := startUpstream(t, "echo", "-echo")
	g := startGateway(t, `
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
consumers:
  - {name: billing, groups: [internal], api_keys: ["${FASTGATE_TEST_BILLING_KEY}"]}
  - {name: ops, groups: [ops, internal], api_keys: ["`+authOpsKey+`"], basic_auth: {username: ops, password_hash: "`+authBcrypt+`"}}
api_key: {query: api_key}
routes:
  - {match: {path: "/any/{p:*}"}, upstream: echo, auth: {any_of: [api_key, basic]}}
  - {match: {path: "/ops/{p:*}"}, upstream: echo, auth: {any_of: [api_key, basic], groups: [ops]}}
`, echo)
	basic := func(user, pass string) string {
		return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	const challenge = `APIKey realm="fastgate", header="X-API-Key"` + "\n" + `Basic realm="fastgate", charset="UTF-8"`
	fail := func(path string, status int, headers ...string) {
		t.Helper()
		r := g.get(t, path, headers...)
		checkGatewayError(t, path, r, status)
		got := strings.Join(r.header.Values("WWW-Authenticate"), "\n")
		want := challenge
		if status == 403 {
			want = ""
		}
		if got != want {
			t.Errorf("%s %q: WWW-Authenticate got\n%s\nwant\n%s", path, headers, got, want)
		}
	}
	fail("/any/x", 401)
	fail("/any/x", 401, "X-API-Key: wrong-key-0123456789")
	fail("/any/x?api_key=wrong", 401)
	fail("/any/x", 401, basic("ops", "wrong"))
	fail("/any/x", 401, basic("nobody", "open-sesame"))
	fail("/ops/x", 403, "X-API-Key: "+authKey)

	ok := func(path, consumer, groups, uri string, headers ...string) {
		t.Helper()
		e := mustEcho(t, g.get(t, path, headers...))
		for _, name := range []string{"X-API-Key", "Authorization"} {
			if vs := e.Values(name); len(vs) > 0 {
				t.Errorf("%s: the upstream got %s %q; want none", path, name, vs)
			}
		}
		if got := e.Values("X-Consumer"); len(got) != 1 || got[0] != consumer {
			t.Errorf("%s: the upstream got X-Consumer %q; want [%q]", path, got, consumer)
		}
		if got := e.Values("X-Consumer-Groups"); len(got) != 1 || got[0] != groups {
			t.Errorf("%s: the upstream got X-Consumer-Groups %q; want [%q]", path, got, groups)
		}
		if e.URI != uri {
			t.Errorf("%s: the upstream got URI %q; want %q", path, e.URI, uri)
		}
	}
	forged := []string{"X-Consumer: root", "X-Consumer-Groups: admins"}
	ok("/any/x", "billing", "internal", "/any/x", append(forged, "X-API-Key: "+authKey)...)
	ok("/any/x?a=1&api_key="+authKey, "billing", "internal", "/any/x?a=1", forged...)
	ok("/ops/x", "ops", "ops,internal", "/ops/x", append(forged, basic("ops", "open-sesame"))...)
	ok("/ops/x", "ops", "ops,internal", "/ops/x", basic("ops", "open-sesame")) // cached
	ok("/ops/x", "ops", "ops,internal", "/ops/x", "X-API-Key: "+authOpsKey)

	// GET /config (admin API) shows neither a key nor the bcrypt hash
	r, err := g.client.Get("http://" + g.adminAddr + "/config")
	if err != nil {
		t.Fatalf("GET /config: %s", err)
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("GET /config: status %d, %v", r.StatusCode, err)
	}
	for _, secret := range []string{authKey, authOpsKey, authBcrypt} {
		if strings.Contains(string(body), secret) {
			t.Errorf("GET /config shows the secret %q:\n%s", secret, body)
		}
	}
}

// TestAuthCheck: fastgate -check reports a bad auth config with the path
// of each problem.
func TestAuthCheck(t *testing.T) {
	bad := `
upstreams:
  u: {targets: [{url: "http://127.0.0.1:9"}]}
consumers:
  - {name: billing, api_keys: ["short"]}
  - {name: ops, basic_auth: {username: ops, password_hash: "plain"}}
jwt:
  - {name: hs, algorithms: [HS257], secret: "0123456789abcdef0123456789abcdef"}
  - {name: files, algorithms: [RS256], public_keys: [{file: /nonexistent/k.pem}]}
ip: {deny: ["10.0.0.0/33"]}
routes:
  - {upstream: u, auth: {any_of: [apikey]}}
  - {upstream: u, match: {path: /j}, auth: {any_of: ["jwt:corp"]}}
`
	stderr := checkRejects(t, bad)
	f := func(path, what string) { t.Helper(); wantProblem(t, stderr, path, what) }
	f("consumers[0].api_keys[0]", "at least 16")
	f("consumers[1].basic_auth.password_hash", "not a bcrypt hash")
	f("routes[0].auth.any_of[0]", `did you mean "api_key"?`)
	f("routes[1].auth.any_of[0]", `"jwt:corp" names no issuer`)
	f("jwt[0].algorithms[0]", "HS257")
	f("jwt[1].public_keys[0].file", "no such file or directory")
	f("ip.deny[0]", "10.0.0.0/33")
	if strings.Contains(stderr, "short\"") {
		t.Errorf("-check repeats a short API key: %s", stderr)
	}
}
