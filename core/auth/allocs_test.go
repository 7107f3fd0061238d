//go:build !race

package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"fastgate/core/coretest"
)

// TestRequestPathAllocs drives whole requests through a real gateway
// (client, server, route match, this filter, a rate limit per consumer, the
// metrics, the proxy to the in-memory upstream) and asserts the steady
// state allocates nothing: an API key, a cached basic-auth password, and
// JWTs signed with HS256 and ES256 (cached by the verifier).
func TestRequestPathAllocs(t *testing.T) {
	ec, jwks := ecKey(t)
	h := newHarness(t, `
  - name: ec
    algorithms: [ES256]
    groups_claim: groups
    jwks: '`+jwks+`'
routes:
  - name: api
    upstream: users
    auth: {any_of: [api_key, basic, "jwt:corp", "jwt:ec"], groups: [internal, dev]}
    rate_limit: {rate: 1000000, key: consumer}
  # one issuer per route: a token another issuer tries first fails there
  # on the jwt package's parse, which allocates
  - name: ec
    match: {path: "/ec/{p:*}"}
    upstream: users
    auth: {any_of: ["jwt:ec"], groups: [dev]}
    rate_limit: {rate: 1000000, key: consumer}
`)
	ecToken := mint(t, jwtlib.SigningMethodES256, ec, "carol", []string{"dev"})
	f := func(name, path, header, value string) {
		t.Helper()
		coretest.NoAllocsPerRequest(t, name, h.g.Client, func(req *fasthttp.Request) {
			req.SetRequestURI("http://gw.local" + path)
			req.Header.Set(header, value)
			req.Header.Set("X-Consumer", "forged")
		}, func(resp *fasthttp.Response) {
			if resp.StatusCode() != fasthttp.StatusOK {
				t.Fatalf("%s: status %d; want 200; body %s", name, resp.StatusCode(), resp.Body())
			}
		})
	}
	f("api key", "/api/x", "X-API-Key", billingKey)
	f("basic, cached", "/api/x", "Authorization", basicAuth("ops", testPassword))
	f("jwt HS256, consumer", "/api/x", "Authorization", "Bearer "+token(t, "billing", []string{"dev"}, nil))
	f("jwt HS256, subject", "/api/x", "Authorization", "Bearer "+token(t, "alice", []string{"dev"}, nil))
	f("jwt ES256", "/ec/x", "Authorization", "Bearer "+ecToken)
}

// TestFailureAllocs checks that 401s and 403s allocate nothing either:
// a missing and a bad API key, and a consumer outside the route's groups.
// (An invalid JWT costs what the jwt package's parse of it does.)
func TestFailureAllocs(t *testing.T) {
	h := newHarness(t, `
routes:
  - {upstream: users, auth: {any_of: [api_key, basic, "jwt:corp"], groups: [ops]}}
`)
	f := func(name, header, value string, status int) {
		t.Helper()
		coretest.NoAllocsPerRequest(t, name, h.g.Client, func(req *fasthttp.Request) {
			req.SetRequestURI("http://gw.local/x")
			if header != "" {
				req.Header.Set(header, value)
			}
		}, func(resp *fasthttp.Response) {
			if resp.StatusCode() != status {
				t.Fatalf("%s: status %d; want %d", name, resp.StatusCode(), status)
			}
		})
	}
	f("missing", "", "", fasthttp.StatusUnauthorized)
	f("bad key", "X-API-Key", "nope-nope-nope-nope", fasthttp.StatusUnauthorized)
	f("bad basic", "Authorization", "Basic !!!", fasthttp.StatusUnauthorized)
	f("forbidden", "X-API-Key", billingKey, fasthttp.StatusForbidden)
}

// TestChallengeAllocs checks the per-request error_description of an
// invalid token's challenge.
func TestChallengeAllocs(t *testing.T) {
	var resp fasthttp.Response
	challenge := []byte(`Bearer realm="fastgate"`)
	n := testing.AllocsPerRun(1000, func() {
		resp.Header.Reset()
		s := acquireScratch()
		s.b = appendInvalidToken(append(s.b[:0], challenge...), "token expired")
		resp.Header.AddBytesV(strWWWAuthenticate, s.b)
		releaseScratch(s)
	})
	if n != 0 {
		t.Fatalf("got %v allocs per challenge; want 0", n)
	}
}

// ecKey returns a P-256 key and its public JWK set.
func ecKey(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	var x, y [32]byte
	k.PublicKey.X.FillBytes(x[:]) //nolint:staticcheck // the JWK wants the coordinates
	k.PublicKey.Y.FillBytes(y[:]) //nolint:staticcheck
	return k, `{"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "x": "` + b64(x[:]) + `", "y": "` + b64(y[:]) + `"}]}`
}

func mint(t testing.TB, m jwtlib.SigningMethod, key any, sub string, groups []string) string {
	t.Helper()
	c := jwtlib.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix(), "groups": groups}
	s, err := jwtlib.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign: %s", err)
	}
	return s
}
