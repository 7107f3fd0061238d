//go:build !race

package jwt

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

// TestVerifyCachedAllocs: the steady state of a request with a token
// seen before, Extract and a cached Verify, allocates nothing.
func TestVerifyCachedAllocs(t *testing.T) {
	k := keysOnce()
	f := func(name string, cfg *config.JWTIssuer, token string) {
		t.Helper()
		v := newVerifier(t, cfg, Options{})
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.SetRequestURI("http://gw.local/api")
		req.Header.Set("Authorization", "Bearer "+token)
		run := func() {
			tok, e := v.Verify(v.Extract(req), t0)
			if e != nil || tok.Subject != "alice" || !tok.HasClaim("sub", "alice") {
				t.Fatalf("%s: Verify got %v, %v; want alice", name, tok, e)
			}
		}
		run()
		if n := testing.AllocsPerRun(1000, run); n != 0 {
			t.Fatalf("%s: got %v allocs per cached Verify; want 0", name, n)
		}
	}
	f("HS256", &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret)}, sign(t, "HS256", "", k.secret, claims()))
	f("ES256", &config.JWTIssuer{Algorithms: []string{"ES256"}, JWKS: jwks(jwkOf("k1", "ES256", &k.p256.PublicKey))},
		sign(t, "ES256", "k1", k.p256, claims()))
}

// TestExtractAllocs: Extract from each place allocates nothing.
func TestExtractAllocs(t *testing.T) {
	f := func(from config.JWTSource, set func(*fasthttp.Request)) {
		t.Helper()
		v := newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: "x", From: from}, Options{})
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		run := func() {
			req.Reset()
			req.SetRequestURI("http://gw.local/api?access_token=tok")
			set(req)
			if string(v.Extract(req)) != "tok" {
				t.Fatalf("%+v: Extract got %q; want tok", from, v.Extract(req))
			}
		}
		run()
		if n := testing.AllocsPerRun(1000, run); n != 0 {
			t.Fatalf("%+v: got %v allocs per Extract; want 0", from, n)
		}
	}
	f(config.JWTSource{}, func(r *fasthttp.Request) { r.Header.Set("Authorization", "bearer tok") })
	f(config.JWTSource{Header: "X-Token"}, func(r *fasthttp.Request) { r.Header.Set("X-Token", "tok") })
	f(config.JWTSource{Query: "access_token"}, func(*fasthttp.Request) {})
	f(config.JWTSource{Cookie: "jwt"}, func(r *fasthttp.Request) { r.Header.SetCookie("jwt", "tok") })
}

// TestPrecheckAllocs: a token of another issuer, or of an algorithm the
// issuer does not accept, is refused without allocating and without a
// JWKS refresh: what a route accepting several issuers sees for every
// token of the others.
func TestPrecheckAllocs(t *testing.T) {
	k := keysOnce()
	v := newVerifier(t, &config.JWTIssuer{Issuer: "https://a.example", Algorithms: []string{"HS256"}, Secret: string(k.secret)}, Options{})
	f := func(name, token string, want *Error) {
		t.Helper()
		b := []byte(token)
		run := func() {
			if _, e := v.Verify(b, t0); e != want {
				t.Fatalf("%s: Verify got %v; want %v", name, e, want)
			}
		}
		run()
		if n := testing.AllocsPerRun(1000, run); n != 0 {
			t.Fatalf("%s: got %v allocs per refused Verify; want 0", name, n)
		}
	}
	f("another issuer", sign(t, "HS256", "", k.secret, claims("iss", "https://b.example")), ErrIssuer)
	f("another algorithm", sign(t, "ES256", "k1", k.p256, claims("iss", "https://a.example")), ErrAlgNotAllowed)
	if st := v.Stats(); st.UnknownKidRefreshes != 0 {
		t.Fatalf("kid refreshes got %d; want 0", st.UnknownKidRefreshes)
	}
}
