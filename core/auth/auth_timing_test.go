package auth

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkAuth measures whole requests through the in-memory gateway
// (client, server, route, auth, proxy, upstream) with each method in its
// steady state, against the same route without auth (baseline): the
// difference is the filter's cost. Run with -benchmem.
func BenchmarkAuth(b *testing.B) {
	h := newHarness(b, `
routes:
  - {upstream: users, match: {path: /public}}
  - {upstream: users, match: {path: /key}, auth: {any_of: [api_key]}}
  - {upstream: users, match: {path: /basic}, auth: {any_of: [basic]}}
  - {upstream: users, match: {path: /jwt}, auth: {any_of: ["jwt:corp"], groups: [dev]}}
`)
	f := func(name, path, header, value string) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				for pb.Next() {
					req.Reset()
					req.SetRequestURI("http://gw.local" + path)
					if header != "" {
						req.Header.Set(header, value)
					}
					if err := h.g.Client.Do(req, resp); err != nil || resp.StatusCode() != fasthttp.StatusOK {
						b.Fatalf("%s: %v, status %d", name, err, resp.StatusCode())
					}
				}
			})
		})
	}
	f("baseline", "/public", "", "")
	f("api_key", "/key", "X-API-Key", billingKey)
	f("basic_cached", "/basic", "Authorization", basicAuth("ops", testPassword))
	f("jwt_hs256_cached", "/jwt", "Authorization", "Bearer "+token(b, "alice", []string{"dev"}, nil))
}

var sink *consumer

// BenchmarkCredentials measures the credential checks alone: an API key
// lookup (SHA-256 and a map) and a cached basic-auth password (base64,
// SHA-256 and a compare), each against a naive bcrypt compare as the
// baseline it avoids.
func BenchmarkCredentials(b *testing.B) {
	cs := newConsumers(NewBuilder(Options{}), mustParseConsumers(b))
	key := []byte(billingKey)
	b.Run("api_key", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sink = cs.apiKey(key)
			}
		})
	})
	hdr := []byte(basicAuth("ops", testPassword))
	b.Run("basic_cached", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var buf basicBuf
			for pb.Next() {
				user, pass, _ := parseBasic(hdr, &buf)
				sink, _ = cs.basic(user, pass)
			}
		})
	})
	b.Run("basic_bcrypt_cost4_baseline", func(b *testing.B) {
		b.ReportAllocs()
		u := cs.users["ops"]
		for b.Loop() {
			cs.b.bcrypt(u.hash, []byte(testPassword))
		}
	})
}
