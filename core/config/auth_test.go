package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// testBcrypt is bcrypt("open-sesame", cost 4).
const testBcrypt = "$2a$04$th/QcBZKJ1f22G6wMqaAd./Z1d3fxUFkBks3wM3POE.WPUK22BT1m"

func sha256Key(k string) string {
	s := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestAuthDefaults(t *testing.T) {
	c := mustParse(t, validBase+`
consumers:
  - name: billing
    groups: [internal]
    api_keys: ["billing-key-0123456789", "SHA256:`+strings.ToUpper(sha256Key("other-key-0123456789")[7:])+`"]
    rate_limit: {rate: 5}
  - name: ops@example.com
    basic_auth: {username: ops, password_hash: "`+testBcrypt+`"}
routes:
  - upstream: users
    auth: {any_of: [api_key, basic]}
`, "yaml")
	c.SetDefaults(nil)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %s", err)
	}
	// "SHA256:" is not the prefix: that key was taken as a clear key
	keys := c.Consumers[0].APIKeys
	if got, want := keys[0], sha256Key("billing-key-0123456789"); got != want {
		t.Fatalf("api_keys[0] got %q; want %q", got, want)
	}
	if got := keys[1]; !strings.HasPrefix(got, "sha256:") || len(got) != 71 {
		t.Fatalf("api_keys[1] got %q; want a sha256:<hex> key", got)
	}
	if d, ok := APIKeyDigest(keys[0]); !ok || d != sha256.Sum256([]byte("billing-key-0123456789")) {
		t.Fatalf("APIKeyDigest(%q) got %x, %v; want the key's SHA-256", keys[0], d, ok)
	}
	rl := c.Consumers[0].RateLimit
	if rl.Per != Duration(time.Second) || rl.Burst != 5 {
		t.Fatalf("consumer rate_limit got per %s burst %d; want 1s 5", rl.Per, rl.Burst)
	}
	a := c.Routes[0].Auth
	if a.Realm != "fastgate" || a.ConsumerHeader != "X-Consumer" || a.GroupsHeader != "X-Consumer-Groups" {
		t.Fatalf("auth defaults got realm %q, consumer_header %q, groups_header %q", a.Realm, a.ConsumerHeader, a.GroupsHeader)
	}
	if c.APIKey.Header != "X-API-Key" || c.APIKey.Query != "" || c.APIKey.Bearer {
		t.Fatalf("api_key defaults got %+v", c.APIKey)
	}
	// a hashed key given in lower case is kept; defaults are idempotent
	h := sha256Key("x")
	if got := hashAPIKey(h); got != h {
		t.Fatalf("hashAPIKey(%q) got %q; want it unchanged", h, got)
	}
	c.SetDefaults(nil)
	if got := c.Consumers[0].APIKeys[0]; got != keys[0] {
		t.Fatalf("second SetDefaults changed api_keys[0] to %q", got)
	}

	// GET /config shows neither a clear key nor a bcrypt hash
	r := c.Redacted()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"billing-key-0123456789", testBcrypt} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("Redacted config shows %q:\n%s", secret, b)
		}
	}
	if r.Consumers[1].BasicAuth.PasswordHash != Redacted || c.Consumers[1].BasicAuth.PasswordHash != testBcrypt {
		t.Fatalf("password_hash: redacted %q, original %q", r.Consumers[1].BasicAuth.PasswordHash, c.Consumers[1].BasicAuth.PasswordHash)
	}
}

func TestAuthValidateErrors(t *testing.T) {
	f := func(data string, want ...string) {
		t.Helper()
		err := validate(t, validBase+data)
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("Validate(%s): got %v; want Errors", data, err)
		}
		if len(errs) != len(want) {
			t.Fatalf("Validate(%s): got %d errors:\n%s\nwant %d:\n%s", data, len(errs), err, len(want), strings.Join(want, "\n"))
		}
		for i, w := range want {
			if got := errs[i].Error(); !strings.HasPrefix(got, w) {
				t.Fatalf("Validate(%s): error %d got\n%s\nwant prefix\n%s", data, i, got, w)
			}
		}
	}
	route := "routes: [{upstream: users}]\n"
	key := `"k0123456789abcdef"`

	// consumers
	f(route+`consumers: [{api_keys: [`+key+`]}]`, `consumers[0].name: "" may only use`)
	f(route+`consumers: [{name: "a b"}]`, `consumers[0].name: "a b" may only use`)
	f(route+`consumers: [{name: a}, {name: a}]`, `consumers[1].name: "a" is already the name of consumers[0]`)
	f(route+`consumers: [~]`, `consumers[0]: is empty`)
	f(route+`consumers: [{name: a, groups: [ok, "a,b", ""]}]`,
		`consumers[0].groups[1]: group "a,b" must not`, `consumers[0].groups[2]: group "" must not`)
	f(route+`consumers: [{name: a, api_keys: [""]}]`, `consumers[0].api_keys[0]: is empty`)
	f(route+`consumers: [{name: a, api_keys: ["short"]}]`, `consumers[0].api_keys[0]: is 5 bytes; an API key must have at least 16`)
	f(route+`consumers: [{name: a, api_keys: ["sha256:abc"]}]`, `consumers[0].api_keys[0]: starts with "sha256:" but`)
	f(route+`consumers: [{name: a, api_keys: [`+key+`]}, {name: b, api_keys: ["`+sha256Key("k0123456789abcdef")+`"]}]`,
		`consumers[1].api_keys[0]: is the same key as consumers[0].api_keys[0]`)
	f(route+`consumers: [{name: a, basic_auth: {username: "", password_hash: "`+testBcrypt+`"}}]`,
		`consumers[0].basic_auth.username: "" must not be empty`)
	f(route+`consumers: [{name: a, basic_auth: {username: "x:y", password_hash: "`+testBcrypt+`"}}]`,
		`consumers[0].basic_auth.username: "x:y" must not`)
	f(route+`consumers: [{name: a, basic_auth: {username: u, password_hash: "`+testBcrypt+`"}}, {name: b, basic_auth: {username: u, password_hash: "`+testBcrypt+`"}}]`,
		`consumers[1].basic_auth.username: "u" is already the user name of consumers[0].basic_auth`)
	f(route+`consumers: [{name: a, basic_auth: {username: u}}]`, `consumers[0].basic_auth.password_hash: is empty; generate`)
	f(route+`consumers: [{name: a, basic_auth: {username: u, password_hash: "open-sesame"}}]`,
		`consumers[0].basic_auth.password_hash: is not a bcrypt hash`)
	f(route+`consumers: [{name: a, basic_auth: {username: u, password_hash: "`+strings.Replace(testBcrypt, "$04$", "$03$", 1)+`"}}]`,
		`consumers[0].basic_auth.password_hash: has cost "03"`)
	f(route+`consumers: [{name: a, basic_auth: {username: u, password_hash: "`+strings.Replace(testBcrypt, "$2a$", "$1a$", 1)+`"}}]`,
		`consumers[0].basic_auth.password_hash: is not a bcrypt hash`)
	f(route+`consumers: [{name: a, basic_auth: {username: u, password_hash: "`+testBcrypt[:59]+`!"}}]`,
		`consumers[0].basic_auth.password_hash: has a character outside`)
	f(route+`consumers: [{name: a, rate_limit: {rate: 0, burst: -1}}]`,
		`consumers[0].rate_limit.rate: must be > 0`, `consumers[0].rate_limit.burst: must be >= 0`)

	// api_key
	f(route+`api_key: {header: "X Key", query: "a&b"}`, `api_key.header: "X Key" is not a header name`, `api_key.query: "a&b" is not a query argument name`)

	// route auth
	consumers := `consumers: [{name: a, api_keys: [` + key + `]}]` + "\n"
	f(consumers+`routes: [{upstream: users, auth: {}}]`, `routes[0].auth: lists no method`)
	f(consumers+`routes: [{upstream: users, auth: {any_of: [apikey]}}]`, `routes[0].auth.any_of[0]: unknown method "apikey"; want "api_key", "basic" or "jwt:NAME"; did you mean "api_key"?`)
	f(consumers+`routes: [{upstream: users, auth: {any_of: [api_key, api_key]}}]`, `routes[0].auth.any_of[1]: "api_key" is listed twice`)
	f(consumers+`routes: [{upstream: users}, {upstream: users, match: {path: /b}}, {upstream: users, match: {path: /c}, auth: {any_of: [basic]}}]`,
		`routes[2].auth.any_of[0]: "basic" but no consumer has basic_auth; add one under consumers`)
	f(`routes: [{upstream: users}, {upstream: users, match: {path: /b}}, {upstream: users, match: {path: /c}, auth: {all_of: [api_key]}}]`,
		`routes[2].auth.all_of[0]: "api_key" but no consumer has api_keys; add one under consumers`)
	f(consumers+`routes: [{upstream: users, auth: {any_of: ["jwt:corp"]}}]`, `routes[0].auth.any_of[0]: "jwt:corp" names no issuer of the top-level jwt list`)
	f(consumers+`routes: [{upstream: users, auth: {any_of: [api_key], claims: {scope: read}}}]`, `routes[0].auth.claims: are checked on JWTs, but no jwt:NAME method`)
	f(consumers+`routes: [{upstream: users, auth: {any_of: [api_key], groups: ["a b"]}}]`, `routes[0].auth.groups[0]: group "a b" must not`)
	f(consumers+`routes: [{upstream: users, auth: {any_of: [api_key], realm: "a\"b"}}]`, `routes[0].auth.realm: "a\"b" must not contain`)
	f(consumers+`routes: [{upstream: users, auth: {any_of: [api_key], consumer_header: Authorization, groups_header: "X Y"}}]`,
		`routes[0].auth.consumer_header: "Authorization" is a header the request needs`, `routes[0].auth.groups_header: "X Y" is not a header name`)
	f(consumers+`routes: [{upstream: users, auth: {any_of: [api_key], consumer_header: X-Who, groups_header: x-who}}]`,
		`routes[0].auth.groups_header: "x-who" is also consumer_header`)
}

func TestAuthValidateOK(t *testing.T) {
	err := validate(t, validBase+`
consumers:
  - {name: billing, groups: [internal, "team-a"], api_keys: ["`+sha256Key("whatever")+`"]}
  - {name: "ops.team@example.com", basic_auth: {username: "ops user", password_hash: "`+strings.Replace(testBcrypt, "$2a$", "$2y$", 1)+`"}}
api_key: {header: Api-Key, query: api_key, bearer: true}
routes:
  - upstream: users
    auth: {any_of: [api_key, basic], all_of: [api_key], groups: [internal, nobody-has-it], realm: "my api", keep_credentials: true, consumer_header: X-Who, groups_header: X-Who-Groups}
`)
	if err != nil {
		t.Fatalf("Validate: %s", err)
	}
}

func TestAuthJWT(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef-jwt"
	c := mustParse(t, validBase+`
jwt: [{name: corp, algorithms: [HS256], secret: "`+secret+`"}]
routes:
  - upstream: users
    auth: {any_of: ["jwt:corp"], claims: {scope: read}}
`, "yaml")
	c.SetDefaults(nil)
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %s", err)
	}
	if got := c.Redacted().JWT[0].Secret; got != Redacted || c.JWT[0].Secret != secret {
		t.Fatalf("Redacted: jwt[0].secret got %q (original %q); want %q", got, c.JWT[0].Secret, Redacted)
	}
	err := validate(t, validBase+`
jwt: [{name: corp, algorithms: [HS256], secret: "`+secret+`"}]
routes: [{upstream: users, auth: {any_of: ["jwt:crop"]}}]
`)
	if want := `routes[0].auth.any_of[0]: "jwt:crop" names no issuer of the top-level jwt list; did you mean "jwt:corp"?`; err == nil || err.Error() != want {
		t.Fatalf("Validate: got %v; want %s", err, want)
	}
}
