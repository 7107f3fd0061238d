package jwt

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"

	"fastgate/core/config"
)

func TestVerify(t *testing.T) {
	k := keysOnce()
	f := func(name string, v *Verifier, token string, now time.Time, want *Error) {
		t.Helper()
		tok, e := v.Verify([]byte(token), now)
		if e != want {
			t.Fatalf("%s: Verify got error %v; want %v", name, e, want)
		}
		if want == nil && (tok == nil || tok.Subject != "alice" || tok.Consumer.Name != "alice" || tok.Consumer.Index != -1) {
			t.Fatalf("%s: Verify got token %+v; want subject alice", name, tok)
		}
		// A second Verify, from the cache when the first passed, agrees.
		if _, e2 := v.Verify([]byte(token), now); e2 != want {
			t.Fatalf("%s: second Verify got error %v; want %v", name, e2, want)
		}
	}
	hs := func(algs ...string) *Verifier {
		return newVerifier(t, &config.JWTIssuer{Algorithms: algs, Secret: string(k.secret)}, Options{})
	}
	set := jwks(jwkOf("p256", "", &k.p256.PublicKey), jwkOf("p384", "ES384", &k.p384.PublicKey),
		jwkOf("p521", "", &k.p521.PublicKey), jwkOf("ed", "", k.ed.Public()))
	pub := newVerifier(t, &config.JWTIssuer{
		Algorithms: []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"},
		PublicKeys: []config.JWTPublicKey{{File: pemFile(t, &k.rsa.PublicKey), Kid: "rsa"}},
		JWKS:       set,
	}, Options{})

	// every algorithm signs and verifies
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		f(alg, hs(alg), sign(t, alg, "", k.secret, claims()), t0, nil)
	}
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		f(alg, pub, sign(t, alg, "rsa", k.rsa, claims()), t0, nil)
	}
	f("ES256", pub, sign(t, "ES256", "p256", k.p256, claims()), t0, nil)
	f("ES384", pub, sign(t, "ES384", "p384", k.p384, claims()), t0, nil)
	f("ES512", pub, sign(t, "ES512", "p521", k.p521, claims()), t0, nil)
	f("EdDSA", pub, sign(t, "EdDSA", "ed", k.ed, claims()), t0, nil)
	f("no kid: every key of the type is tried", pub, sign(t, "ES512", "", k.p521, claims()), t0, nil)

	// algorithm pinning and key types
	rsaPEM := pemBytes(t, &k.rsa.PublicKey)
	f("alg confusion: HS256 signed with the RSA public key", pub, sign(t, "HS256", "rsa", rsaPEM, claims()), t0, ErrAlgNotAllowed)
	f("alg not pinned", hs("HS256"), sign(t, "HS512", "", k.secret, claims()), t0, ErrAlgNotAllowed)
	f("alg none", hs("HS256"), rawToken(`{"alg":"none","typ":"JWT"}`, `{"sub":"alice","exp":1999999999}`, nil), t0, ErrAlgNotAllowed)
	f("alg none with a signature", pub, rawToken(`{"alg":"none"}`, `{"sub":"alice"}`, []byte("x")), t0, ErrAlgNotAllowed)
	f("alg unknown", pub, rawToken(`{"alg":"XS256","kid":"rsa"}`, `{"sub":"alice"}`, []byte("x")), t0, ErrAlgNotAllowed)
	f("ES256 token naming the RSA key", pub, sign(t, "ES256", "rsa", k.p256, claims()), t0, ErrKeyMismatch)
	f("ES256 token naming the P-384 key", pub, sign(t, "ES256", "p384", k.p256, claims()), t0, ErrKeyMismatch)
	f("JWK alg ES384 pins it", pub, sign(t, "ES384", "p384", k.p384, claims()), t0, nil)
	f("unknown kid", pub, sign(t, "RS256", "nope", k.rsa, claims()), t0, ErrUnknownKid)
	f("wrong key", pub, sign(t, "RS256", "rsa", k.rsa2, claims()), t0, ErrSignature)
	f("kid not a string", pub, rawToken(`{"alg":"RS256","kid":7}`, `{"sub":"alice"}`, []byte("x")), t0, ErrMalformed)
	f("crit", hs("HS256"), signHeader(t, "HS256", k.secret, map[string]any{"crit": []string{"exp"}}, claims()), t0, ErrCritical)

	// time claims, with the 30s leeway
	h := hs("HS256")
	tok := func(c jwtlib.MapClaims) string { return sign(t, "HS256", "", k.secret, c) }
	f("expired", h, tok(claims("exp", t0.Add(-31*time.Second).Unix())), t0, ErrExpired)
	f("expired within leeway", h, tok(claims("exp", t0.Add(-29*time.Second).Unix())), t0, nil)
	f("not yet valid", h, tok(claims("nbf", t0.Add(31*time.Second).Unix())), t0, ErrNotYetValid)
	f("nbf within leeway", h, tok(claims("nbf", t0.Add(29*time.Second).Unix())), t0, nil)
	f("issued in the future", h, tok(claims("iat", t0.Add(time.Minute).Unix())), t0, ErrIssuedInFuture)
	f("no exp", h, tok(claims("exp", nil)), t0, ErrNoExpiry)
	noExp := false
	f("no exp, require_exp false", newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret), RequireExp: &noExp}, Options{}),
		tok(claims("exp", nil)), t0, nil)
	zero := config.Duration(0)
	f("leeway 0s", newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret), Leeway: &zero}, Options{}),
		tok(claims("exp", t0.Add(-time.Second).Unix())), t0, ErrExpired)
	f("exp not a number", h, tok(claims("exp", "soon")), t0, ErrMalformed)

	// issuer, audience, consumer
	ia := newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret),
		Issuer: "https://idp", Audience: []string{"api", "web"}}, Options{})
	f("iss and aud", ia, tok(claims("iss", "https://idp", "aud", "web")), t0, nil)
	f("aud list", ia, tok(claims("iss", "https://idp", "aud", []string{"x", "api"})), t0, nil)
	f("iss mismatch", ia, tok(claims("iss", "https://evil", "aud", "api")), t0, ErrIssuer)
	f("iss missing", ia, tok(claims("aud", "api")), t0, ErrIssuer)
	f("aud mismatch", ia, tok(claims("iss", "https://idp", "aud", []string{"x"})), t0, ErrAudience)
	f("aud missing", ia, tok(claims("iss", "https://idp")), t0, ErrAudience)
	f("no sub", h, tok(claims("sub", nil)), t0, ErrNoConsumer)
	f("sub not a string", h, tok(claims("sub", 7)), t0, ErrNoConsumer)

	// size and shape
	small := newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret), MaxTokenSize: 100}, Options{})
	f("too large", small, tok(claims("pad", strings.Repeat("x", 100))), t0, ErrTooLarge)
	f("empty", h, "", t0, ErrMalformed)
	f("one segment", h, "abc", t0, ErrMalformed)
	f("empty segments", h, "..", t0, ErrMalformed)
	f("header not JSON", h, rawToken(`{"alg":`, `{}`, []byte("x")), t0, ErrMalformed)
	f("payload not base64", h, "eyJhbGciOiJIUzI1NiJ9.!!!.abc", t0, ErrMalformed)
	good := tok(claims())
	f("signature tampered", h, good[:len(good)-2]+flip(good[len(good)-2:]), t0, ErrSignature)
	f("payload tampered", h, rawSwapPayload(good, `{"sub":"mallory","exp":1999999999}`), t0, ErrSignature)
}

// flip changes a base64url text to another valid one of the same length.
func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func rawSwapPayload(tok, payload string) string {
	parts := strings.Split(tok, ".")
	p := strings.Split(rawToken("{}", payload, nil), ".")[1]
	return parts[0] + "." + p + "." + parts[2]
}

func signHeader(t *testing.T, alg string, priv any, header map[string]any, c jwtlib.MapClaims) string {
	t.Helper()
	tok := jwtlib.NewWithClaims(jwtlib.GetSigningMethod(alg), c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pemBytes(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestTokenClaims(t *testing.T) {
	k := keysOnce()
	v := newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret), GroupsClaim: "groups"}, Options{})
	tok, e := v.Verify([]byte(sign(t, "HS256", "", k.secret, claims(
		"groups", []any{"admins", 7, "ops"}, "scope", "read write", "n", 42, "big", 1e21, "ok", true, "tier", "gold"))), t0)
	if e != nil {
		t.Fatal(e)
	}
	if want := []string{"admins", "ops"}; !reflect.DeepEqual(tok.Groups, want) || !reflect.DeepEqual(tok.Consumer.Groups, want) {
		t.Fatalf("Groups got %q (consumer %q); want %q", tok.Groups, tok.Consumer.Groups, want)
	}
	f := func(name, value string, want bool) {
		t.Helper()
		if got := tok.HasClaim(name, value); got != want {
			t.Fatalf("HasClaim(%q, %q) got %v; want %v", name, value, got, want)
		}
	}
	f("tier", "gold", true)
	f("tier", "gol", false)
	f("scope", "read", true)
	f("scope", "write", true)
	f("scope", "read write", true)
	f("scope", "rea", false)
	f("scope", "", false)
	f("groups", "ops", true)
	f("groups", "7", true)
	f("groups", "dev", false)
	f("n", "42", true)
	f("n", "42.0", false)
	f("big", "1e+21", true)
	f("ok", "true", true)
	f("ok", "false", false)
	f("missing", "", false)

	// groups_claim as a space-separated string
	v = newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret), GroupsClaim: "scope"}, Options{})
	tok, e = v.Verify([]byte(sign(t, "HS256", "", k.secret, claims("scope", " read  write "))), t0)
	if e != nil || !reflect.DeepEqual(tok.Groups, []string{"read", "write"}) {
		t.Fatalf("scope groups got %v, %v; want [read write]", tok, e)
	}
}

func TestCache(t *testing.T) {
	k := keysOnce()
	v := newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret), CacheSize: 32}, Options{})
	good := sign(t, "HS256", "", k.secret, claims())
	a, e := v.Verify([]byte(good), t0)
	if e != nil {
		t.Fatal(e)
	}
	b, e := v.Verify([]byte(good), t0.Add(time.Minute))
	if e != nil || a != b {
		t.Fatalf("cached Verify got %p, %v; want the first token %p", b, e, a)
	}
	if s := v.Stats(); s.CacheHits != 1 || s.CacheMisses != 1 {
		t.Fatalf("Stats got %+v; want 1 hit, 1 miss", s)
	}
	// A cached token expires on time (leeway 30s).
	if _, e := v.Verify([]byte(good), t0.Add(time.Hour+29*time.Second)); e != nil {
		t.Fatalf("cached token within leeway got %v; want valid", e)
	}
	if _, e := v.Verify([]byte(good), t0.Add(time.Hour+30*time.Second)); e != ErrExpired {
		t.Fatalf("cached token after exp+leeway got %v; want %v", e, ErrExpired)
	}
	// nbf is rechecked too (a clock stepped back).
	nbf := sign(t, "HS256", "", k.secret, claims("nbf", t0.Unix()))
	if _, e := v.Verify([]byte(nbf), t0); e != nil {
		t.Fatal(e)
	}
	if _, e := v.Verify([]byte(nbf), t0.Add(-time.Minute)); e != ErrNotYetValid {
		t.Fatalf("cached token before nbf got %v; want %v", e, ErrNotYetValid)
	}
	// Invalid tokens are not cached.
	bad := good[:len(good)-2] + flip(good[len(good)-2:])
	for range 2 {
		if _, e := v.Verify([]byte(bad), t0); e != ErrSignature {
			t.Fatalf("tampered got %v; want %v", e, ErrSignature)
		}
	}
	// The cache stays bounded.
	for i := range 200 {
		if _, e := v.Verify([]byte(sign(t, "HS256", "", k.secret, claims("i", i))), t0); e != nil {
			t.Fatal(e)
		}
	}
	n := 0
	for i := range v.cache.shards {
		n += len(v.cache.shards[i].m)
	}
	if n > 32 {
		t.Fatalf("cache holds %d tokens; want at most cache_size 32", n)
	}
}

// TestCacheCollision: two tokens in the same shard under a forged hash
// are told apart by their bytes.
func TestCacheCollision(t *testing.T) {
	k := keysOnce()
	v := newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret)}, Options{})
	good := sign(t, "HS256", "", k.secret, claims())
	if _, e := v.Verify([]byte(good), t0); e != nil {
		t.Fatal(e)
	}
	// Same shard by construction: every shard lookup goes through the
	// map with the full text, so a lookalike misses.
	other := []byte(good)
	other[len(other)-1] ^= 1
	sh := v.cache.shard(0)
	for i := range v.cache.shards {
		if v.cache.shards[i].get([]byte(good)) != nil {
			sh = &v.cache.shards[i]
		}
	}
	if sh.get(other) != nil || sh.get([]byte(good)) == nil {
		t.Fatalf("shard get: a one-bit different token hit the cache")
	}
	if bytes.Equal(other, []byte(good)) {
		t.Fatal("test bug")
	}
}

func TestNewErrors(t *testing.T) {
	f := func(cfg *config.JWTIssuer, want string) {
		t.Helper()
		cfg.Name = "corp"
		_, err := New(cfg, Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("New(%+v) got error %v; want one containing %q", cfg, err, want)
		}
	}
	f(&config.JWTIssuer{}, "no algorithms")
	f(&config.JWTIssuer{Algorithms: []string{"none"}}, `unknown algorithm "none"`)
	f(&config.JWTIssuer{Algorithms: []string{"HS256", "RS256"}, Secret: "s"}, "mix")
	f(&config.JWTIssuer{Algorithms: []string{"HS256"}}, "need secret")
	f(&config.JWTIssuer{Algorithms: []string{"RS256"}, Secret: "s"}, "secret applies to HS*")
	f(&config.JWTIssuer{Algorithms: []string{"RS256"}}, "no key")
	f(&config.JWTIssuer{Algorithms: []string{"RS256"}, PublicKeys: []config.JWTPublicKey{{File: "/nonexistent.pem"}}},
		`jwt: issuer "corp": public_keys[0].file: open /nonexistent.pem: no such file or directory`)
	f(&config.JWTIssuer{Algorithms: []string{"RS256"}, JWKS: `{"keys": [{"kty": "oct"}]}`}, `jwks: keys[0]`)
}
