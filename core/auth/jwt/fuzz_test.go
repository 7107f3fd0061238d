package jwt

import (
	"strings"
	"testing"

	"fastgate/core/auth/jwt/jwk"
	"fastgate/core/config"
)

// FuzzVerify: no input panics Verify, every rejection is one of the
// package's errors, and only a token the key signed passes.
func FuzzVerify(f *testing.F) {
	k := keysOnce()
	good := sign(f, "HS256", "", k.secret, claims())
	f.Add(good)
	f.Add(sign(f, "ES256", "k1", k.p256, claims()))
	f.Add(rawToken(`{"alg":"none"}`, `{"sub":"alice"}`, nil))
	f.Add(rawToken(`{"alg":"HS256","kid":["x"],"crit":1}`, `{"exp":"x","nbf":[],"aud":{}}`, []byte{0}))
	f.Add("a.b.c")
	f.Add("..")
	f.Add(strings.Repeat(".", 50))
	hs := newVerifier(f, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: string(k.secret), Audience: []string{"api"}, GroupsClaim: "g"}, Options{})
	ec := newVerifier(f, &config.JWTIssuer{Algorithms: []string{"ES256", "EdDSA"}, JWKS: jwks(jwkOf("k1", "", &k.p256.PublicKey))}, Options{})
	f.Fuzz(func(t *testing.T, token string) {
		for _, v := range []*Verifier{hs, ec} {
			tok, e := v.Verify([]byte(token), t0)
			if e == nil && tok == nil || e != nil && tok != nil {
				t.Fatalf("Verify(%q) got %v, %v; want exactly one", token, tok, e)
			}
			if e == nil && token != good && v == hs {
				t.Fatalf("Verify(%q) passed a token the test did not sign", token)
			}
			if tok != nil {
				tok.HasClaim("aud", "api")
			}
		}
	})
}

// FuzzJWKS: no document panics the JWK set parser, and every key it
// returns fits at least one algorithm.
func FuzzJWKS(f *testing.F) {
	k := keysOnce()
	f.Add(jwks(jwkOf("r", "RS256", &k.rsa.PublicKey), jwkOf("e", "", &k.p256.PublicKey), jwkOf("d", "", k.ed.Public())))
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`)
	f.Add(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"oct","k":"c2VjcmV0"},{"kty":"OKP","crv":"X25519","x":"AA"}]}`)
	f.Add(`{"keys":null}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, doc string) {
		keys, _, err := jwk.ParseSet([]byte(doc))
		if err != nil && keys != nil {
			t.Fatalf("ParseSet(%q) returned keys with error %v", doc, err)
		}
		for _, key := range keys {
			fits := false
			for _, a := range jwk.Algorithms {
				fits = fits || jwk.Fits(a, key.Public)
			}
			if !fits {
				t.Fatalf("ParseSet(%q) returned key %+v that fits no algorithm", doc, key)
			}
		}
	})
}
