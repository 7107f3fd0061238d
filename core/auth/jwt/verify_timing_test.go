package jwt

import (
	"strconv"
	"sync/atomic"
	"testing"

	"fastgate/core/config"
)

var benchSink atomic.Pointer[Token]

// BenchmarkVerifyUncached verifies a fresh token per call (cache_size 1
// and N tokens that never repeat in a row), per algorithm: the cost of a
// signature check, claims decoding and caching.
func BenchmarkVerifyUncached(b *testing.B) {
	k := keysOnce()
	f := func(alg string, cfg *config.JWTIssuer, priv any) {
		b.Run(alg, func(b *testing.B) {
			cfg.Algorithms = []string{alg}
			cfg.CacheSize = 1
			v := newVerifier(b, cfg, Options{})
			toks := make([][]byte, 64)
			for i := range toks {
				toks[i] = []byte(sign(b, alg, "k1", priv, claims("jti", strconv.Itoa(i))))
			}
			b.ReportAllocs()
			b.ResetTimer()
			var n atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					// cache_size 1 holds the last token only; each call
					// takes the next of 64, so it misses.
					i := n.Add(1)
					tok, e := v.Verify(toks[i%64], t0)
					if e != nil {
						b.Fatal(e)
					}
					benchSink.Store(tok)
				}
			})
		})
	}
	f("HS256", &config.JWTIssuer{Secret: string(k.secret)}, k.secret)
	f("RS256", &config.JWTIssuer{JWKS: jwks(jwkOf("k1", "", &k.rsa.PublicKey))}, k.rsa)
	f("ES256", &config.JWTIssuer{JWKS: jwks(jwkOf("k1", "", &k.p256.PublicKey))}, k.p256)
	f("EdDSA", &config.JWTIssuer{JWKS: jwks(jwkOf("k1", "", k.ed.Public()))}, k.ed)
}

// BenchmarkVerifyCached verifies tokens from the cache: the steady state.
func BenchmarkVerifyCached(b *testing.B) {
	k := keysOnce()
	f := func(alg string, cfg *config.JWTIssuer, priv any) {
		b.Run(alg, func(b *testing.B) {
			cfg.Algorithms = []string{alg}
			v := newVerifier(b, cfg, Options{})
			toks := make([][]byte, 256)
			for i := range toks {
				toks[i] = []byte(sign(b, alg, "k1", priv, claims("jti", strconv.Itoa(i))))
				if _, e := v.Verify(toks[i], t0); e != nil {
					b.Fatal(e)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			var n atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				i := n.Add(1) * 61
				for pb.Next() {
					i++
					tok, e := v.Verify(toks[i%256], t0)
					if e != nil {
						b.Fatal(e)
					}
					benchSink.Store(tok)
				}
			})
		})
	}
	f("HS256", &config.JWTIssuer{Secret: string(k.secret)}, k.secret)
	f("ES256", &config.JWTIssuer{JWKS: jwks(jwkOf("k1", "", &k.p256.PublicKey))}, k.p256)
}
