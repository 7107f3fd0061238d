package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const jwtSecret = "0123456789abcdef0123456789abcdef"

// jwtBase is a valid config without jwt issuers.
const jwtBase = validBase + "routes: [{upstream: users}]\n"

func TestJWTDefaults(t *testing.T) {
	f := func(issuer string, want JWTIssuer) {
		t.Helper()
		env := func(k string) (string, bool) { return jwtSecret, k == "JWT_SECRET" }
		c, err := ParseChecked([]byte(jwtBase+"jwt: ["+issuer+"]"), "yaml", env, nil)
		if err != nil {
			t.Fatalf("ParseChecked(%s): %s", issuer, err)
		}
		if got := *c.JWT[0]; !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\ngot  %+v\nwant %+v", issuer, got, want)
		}
	}
	leeway, zero, yes, no := DefaultJWTLeeway, Duration(0), true, false
	base := func(name string, algs ...string) JWTIssuer {
		return JWTIssuer{Name: name, Algorithms: algs, Leeway: &leeway, RequireExp: &yes, MaxTokenSize: 8 << 10,
			ConsumerClaim: "sub", CacheSize: 10000, From: JWTSource{Header: "Authorization"}}
	}
	hs := base("corp", "HS256")
	hs.Secret = jwtSecret
	f(`{name: corp, algorithms: [HS256], secret: "${JWT_SECRET}"}`, hs)

	remote := base("idp", "RS256", "ES256")
	remote.JWKSURL = "https://idp.example.com/jwks.json"
	remote.JWKSRefresh = JWKSRefresh{MinInterval: Duration(time.Second), DefaultTTL: Duration(5 * time.Minute), MinTTL: Duration(30 * time.Second), MaxTTL: Duration(24 * time.Hour)}
	f(`{name: idp, algorithms: [RS256, ES256], jwks_url: "https://idp.example.com/jwks.json"}`, remote)
	remote.JWKSRefresh.MinInterval = Duration(5 * time.Second)
	remote.JWKSRefresh.MaxTTL = Duration(time.Hour)
	f(`{name: idp, algorithms: [RS256, ES256], jwks_url: "https://idp.example.com/jwks.json", jwks_refresh: {min_interval: 5s, max_ttl: 1h}}`, remote)

	custom := base("app", "HS512")
	custom.Secret = jwtSecret + jwtSecret
	custom.Issuer, custom.Audience = "https://app", []string{"api", "web"}
	custom.Leeway, custom.RequireExp, custom.MaxTokenSize = &zero, &no, 1<<10
	custom.ConsumerClaim, custom.GroupsClaim, custom.CacheSize = "email", "scope", 5
	custom.From = JWTSource{Query: "access_token", Cookie: "jwt"}
	f(`{name: app, algorithms: [HS512], secret: "`+jwtSecret+jwtSecret+`", issuer: "https://app", audience: [api, web],
	   leeway: 0s, require_exp: false, max_token_size: 1KiB, consumer_claim: email, groups_claim: scope, cache_size: 5,
	   from: {query: access_token, cookie: jwt}}`, custom)
}

func TestJWTErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecPEM := write("ec.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	garbage := write("garbage.pem", "not a key")
	pt, _ := ec.PublicKey.Bytes()
	b64 := base64.RawURLEncoding.EncodeToString
	ecJWKS := `'{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"` + b64(pt[1:33]) + `","y":"` + b64(pt[33:]) + `"}]}'`
	missing := filepath.Join(dir, "missing.pem")

	f := func(jwt string, want ...string) {
		t.Helper()
		data := jwtBase + "jwt:\n" + jwt
		c, err := ParseChecked([]byte(data), "yaml", nil, nil)
		if err == nil {
			t.Fatalf("ParseChecked(%s): no error (config %+v); want %q", jwt, c, want)
		}
		if got := err.Error(); got != strings.Join(want, "\n") {
			t.Fatalf("ParseChecked(%s):\ngot:\n%s\nwant:\n%s", jwt, got, strings.Join(want, "\n"))
		}
	}
	const known = "HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA"
	f(`  - {algorithms: [ES256], public_keys: [{file: `+ecPEM+`}]}`,
		`jwt[0].name: "" must be set and may only use letters, digits, '_', '.' and '-'; routes refer to it as "jwt:NAME"`)
	f(`  - {name: a, algorithms: [ES256], public_keys: [{file: `+ecPEM+`}]}
  - {name: a, algorithms: [ES256], public_keys: [{file: `+ecPEM+`}]}`,
		`jwt[1].name: "a" is already the name of jwt[0]; issuer names must be unique`)
	f(`  - {name: a, public_keys: [{file: `+ecPEM+`}]}`,
		"jwt[0].algorithms: must list the algorithms tokens are signed with, such as [RS256]; known: "+known)
	f(`  - {name: a, algorithms: [none, RS265, ES256, ES256], public_keys: [{file: `+ecPEM+`}]}`,
		`jwt[0].algorithms[0]: "none" accepts unsigned tokens and is never allowed; use one of `+known,
		`jwt[0].algorithms[1]: unknown algorithm "RS265"; known: `+known+`; did you mean "RS256"?`,
		`jwt[0].algorithms[3]: "ES256" is listed twice; keep one`)
	f(`  - {name: a, algorithms: [HS256, RS256], secret: `+jwtSecret+`}`,
		"jwt[0].algorithms: mixes HMAC (HS*) and public-key algorithms; an issuer uses one family, so a public key can never be taken for an HMAC secret: declare two issuers")
	f(`  - {name: a, algorithms: [HS256]}`,
		`jwt[0].secret: must be set for HS256; put it in the environment: secret: "${JWT_SECRET}"`)
	f(`  - {name: a, algorithms: [HS256, HS512], secret: short}`,
		"jwt[0].secret: is 5 bytes; HS256, HS512 needs at least 64 (RFC 7518 §3.2), such as the output of `openssl rand -base64 48`")
	f(`  - {name: a, algorithms: [HS256], secret: `+jwtSecret+`, jwks_url: "https://idp/jwks"}`,
		"jwt[0]: HMAC algorithms verify with secret only; remove public_keys, jwks and jwks_url (or pin public-key algorithms)")
	f(`  - {name: a, algorithms: [RS256], secret: `+jwtSecret+`, jwks_url: "https://idp/jwks"}`,
		"jwt[0].secret: applies to HS* algorithms only, not RS256; remove it (keys come from public_keys, jwks or jwks_url)")
	f(`  - {name: a, algorithms: [RS256]}`,
		"jwt[0]: has no key for RS256; set public_keys, jwks or jwks_url")
	f(`  - name: a
    algorithms: [ES256]
    public_keys: [{file: `+ecPEM+`, kid: k}, {file: `+missing+`, kid: k}, {file: `+garbage+`}, {kid: x}]`,
		`jwt[0].public_keys[1].kid: "k" is also the kid of public_keys[0]; kids must be unique`,
		"jwt[0].public_keys[1].file: open "+missing+": no such file or directory",
		"jwt[0].public_keys[2].file: "+garbage+": no PEM block; want -----BEGIN PUBLIC KEY----- or -----BEGIN CERTIFICATE-----",
		"jwt[0].public_keys[3].file: is empty; give the PEM file of the public key or certificate")
	f(`  - {name: a, algorithms: [RS256], public_keys: [{file: `+ecPEM+`}]}`,
		"jwt[0].public_keys[0].file: "+ecPEM+": an EC P-256 key verifies none of RS256")
	f(`  - {name: a, algorithms: [RS256], jwks: `+ecJWKS+`}`,
		`jwt[0].jwks: kid "a": an EC P-256 key verifies none of RS256`)
	f(`  - {name: a, algorithms: [ES256], jwks: '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'}`,
		`jwt[0].jwks: keys[0]: kid "": kty "oct" (a shared secret) is not read from JWK sets; give an HMAC secret with "secret"`)
	f(`  - {name: a, algorithms: [ES256], jwks: '{"keys": '}`,
		`jwt[0].jwks: jwk: not a JWK set: unexpected end of JSON input; want {"keys": [{"kty": ...}, ...]}`)
	f(`  - {name: a, algorithms: [ES256], jwks_url: "ftp://idp/jwks"}`,
		`jwt[0].jwks_url: "ftp://idp/jwks" is not an http(s) URL; write one such as "https://idp.example.com/.well-known/jwks.json"`)
	f(`  - {name: a, algorithms: [ES256], jwks_url: "https://idp/jwks", jwks_refresh: {min_ttl: 2h, max_ttl: 1h, default_ttl: 10s, min_interval: -1s}}`,
		`jwt[0].jwks_refresh.min_interval: duration "-1s" is negative; it must be >= 0`,
		"jwt[0].jwks_refresh.min_ttl: 2h0m0s is above max_ttl 1h0m0s; lower it",
		"jwt[0].jwks_refresh.default_ttl: 10s is outside [min_ttl 2h0m0s, max_ttl 1h0m0s]; set it in between")
	f(`  - {name: a, algorithms: [ES256], jwks: `+ecJWKS+`, jwks_refresh: {min_ttl: 1m}}`,
		"jwt[0].jwks_refresh: applies to jwks_url only; remove it or set jwks_url")
	f(`  - {name: a, algorithms: [ES256], jwks: `+ecJWKS+`, leeway: 2h, max_token_size: 0, cache_size: -1, audience: [""],
       consumer_claim: "", from: {header: "X Token", cookie: "a;b", query: "a=b"}}`,
		`jwt[0].audience[0]: is empty; give the audience tokens carry in aud, or remove it`,
		"jwt[0].leeway: 2h0m0s is more clock skew than any clock has; want at most 1h0m0s, usually 30s",
		`jwt[0].cache_size: must be >= 0 (0 means 10000), got -1`,
		`jwt[0].from.header: "X Token" is not a header name`,
		`jwt[0].from.cookie: "a;b" is not a cookie name`,
		`jwt[0].from.query: "a=b" is not a query argument name`)
	f(`  - {name: a, algorithms: [ES256], jwks: `+ecJWKS+`, bogus: 1}`,
		`jwt[0].bogus: unknown field "bogus" (known: name, issuer, audience, algorithms, secret, public_keys, jwks, jwks_url, jwks_refresh, leeway, require_exp, max_token_size, consumer_claim, groups_claim, from, cache_size)`)
	f(`  - null`,
		`jwt[0]: is empty; give it a name, algorithms and keys, such as {name: corp, algorithms: [RS256], jwks_url: "https://idp.example.com/jwks.json"}`)
}

// TestJWTRedacted: GET /config's copy hides the secret and keeps every
// other field (leeway 0s and require_exp false survive the JSON clone).
func TestJWTRedacted(t *testing.T) {
	c, err := ParseChecked([]byte(jwtBase+`jwt: [{name: a, algorithms: [HS256], secret: `+jwtSecret+`, leeway: 0s, require_exp: false}]`), "yaml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redacted()
	want := *c.JWT[0]
	want.Secret = Redacted
	if got := *r.JWT[0]; !reflect.DeepEqual(got, want) || c.JWT[0].Secret != jwtSecret {
		t.Fatalf("Redacted jwt[0]:\ngot  %+v\nwant %+v (original secret %q)", got, want, c.JWT[0].Secret)
	}
}
