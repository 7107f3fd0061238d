package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
)

// jwksIdP is an identity provider's JWKS endpoint on loopback: its key
// set can be rotated, and it records when it is fetched.
type jwksIdP struct {
	*httptest.Server
	mu      sync.Mutex
	keys    map[string]*ecdsa.PrivateKey
	serving []string // kids served, in order
	fetches []time.Time
}

func newJWKSIdP(t *testing.T, kids ...string) *jwksIdP {
	t.Helper()
	p := &jwksIdP{keys: make(map[string]*ecdsa.PrivateKey)}
	for _, kid := range kids {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p.keys[kid] = k
	}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *jwksIdP) serve(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fetches = append(p.fetches, time.Now())
	b64 := base64.RawURLEncoding.EncodeToString
	keys := []map[string]string{}
	for _, kid := range p.serving {
		pt, _ := p.keys[kid].PublicKey.Bytes()
		keys = append(keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "x": b64(pt[1:33]), "y": b64(pt[33:])})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=3600")
	json.NewEncoder(w).Encode(map[string]any{"keys": keys}) //nolint:errcheck
}

// serve sets the kids the endpoint serves.
func (p *jwksIdP) serveKids(kids ...string) {
	p.mu.Lock()
	p.serving = kids
	p.mu.Unlock()
}

func (p *jwksIdP) fetchTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.fetches...)
}

// token returns "Authorization: Bearer <jwt>" signed with kid's key (the
// key of "k1" for a kid the IdP does not know).
func (p *jwksIdP) token(t *testing.T, kid, sub string) string {
	t.Helper()
	k := p.keys[kid]
	if k == nil {
		k = p.keys["k1"]
	}
	tok := jwtlib.NewWithClaims(jwtlib.SigningMethodES256, jwtlib.MapClaims{
		"sub": sub, "iss": "https://idp.test", "exp": time.Now().Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return "Authorization: Bearer " + s
}

func jwtGatewayConfig(jwksURL string) string {
	return fmt.Sprintf(`
upstreams:
  api: {targets: [{url: "{{api}}"}]}
jwt:
  - name: corp
    issuer: "https://idp.test"
    algorithms: [ES256]
    jwks_url: %q
    jwks_refresh: {min_interval: 1s}
routes:
  - {name: api, match: {path: "/{path:*}"}, upstream: api, auth: {any_of: ["jwt:corp"]}}
`, jwksURL+"/jwks")
}

// waitStatus repeats GET / with header until it answers want, for at most
// d, and returns how long that took.
func waitStatus(t *testing.T, g *gateway, header string, want int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := g.get(t, "/", header)
		if r.status == want {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("GET / with %.40s...: status %d after %s; want %d; body %s", header, r.status, d, want, r.body)
		}
		time.Sleep(pollInterval)
	}
}

// TestJWTJWKSRotation: a gateway verifying tokens against a JWKS URL
// accepts a new kid within one refresh of its first token, and rejects an
// old kid (also a token it has cached) once a refresh no longer finds it.
func TestJWTJWKSRotation(t *testing.T) {
	idp := newJWKSIdP(t, "k1", "k2", "k3")
	idp.serveKids("k1")
	g := startGateway(t, jwtGatewayConfig(idp.URL), startUpstream(t, "api"))

	if r := g.get(t, "/", idp.token(t, "k1", "alice")); r.status != 200 {
		t.Fatalf("k1 token: status %d; want 200; body %s", r.status, r.body)
	}
	if r := g.get(t, "/"); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: status %d, WWW-Authenticate %q; want 401 with a challenge", r.status, r.header.Get("WWW-Authenticate"))
	}

	// rotation: k2 appears; its first token triggers the refresh, which
	// may come min_interval (1s) after the last fetch.
	idp.serveKids("k1", "k2")
	before := len(idp.fetchTimes())
	took := waitStatus(t, g, idp.token(t, "k2", "bob"), 200, 5*time.Second)
	if n := len(idp.fetchTimes()) - before; n != 1 || took > 3*time.Second {
		t.Fatalf("k2 accepted after %s and %d fetches; want one refresh (min_interval 1s)", took, n)
	}

	// removal: k1 goes; the cached k1 token is rejected once a refresh
	// (brought forward by an unknown kid) no longer finds k1.
	idp.serveKids("k2")
	k1 := idp.token(t, "k1", "alice")
	if r := g.get(t, "/", k1); r.status != 200 {
		t.Fatalf("k1 before the refresh: status %d; want 200 (its key is still current)", r.status)
	}
	before = len(idp.fetchTimes())
	waitStatus(t, g, idp.token(t, "k3", "carol"), 401, time.Second) // unknown: kicks a refresh
	waitStatus(t, g, k1, 401, 5*time.Second)
	// One refresh; two when the k2 polls above asked again while the
	// previous fetch ran (kicks are coalesced, not dropped).
	if n := len(idp.fetchTimes()) - before; n < 1 || n > 2 {
		t.Fatalf("k1 rejected after %d fetches; want 1 or 2", n)
	}
	if r := g.get(t, "/", idp.token(t, "k2", "bob")); r.status != 200 {
		t.Fatalf("k2 after k1's removal: status %d; want 200", r.status)
	}
}

// TestJWTUnknownKidFlood: tokens with ever new unknown kids, from four
// clients for two seconds, make the gateway fetch the JWKS at most once
// per min_interval (1s).
func TestJWTUnknownKidFlood(t *testing.T) {
	idp := newJWKSIdP(t, "k1")
	idp.serveKids("k1")
	g := startGateway(t, jwtGatewayConfig(idp.URL), startUpstream(t, "api"))
	if r := g.get(t, "/", idp.token(t, "k1", "alice")); r.status != 200 {
		t.Fatalf("k1 token: status %d; want 200", r.status)
	}
	start := time.Now()
	before := len(idp.fetchTimes())
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, failed := 0, ""
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Since(start) < 2*time.Second; i++ {
				kid := "unknown-" + strconv.Itoa(c) + "-" + strconv.Itoa(i)
				r, err := g.try(http.MethodGet, "/", "", idp.token(t, kid, "mallory"))
				mu.Lock()
				sent++
				if err != nil || r.status != 401 {
					failed = fmt.Sprintf("kid %s: %v, %v; want 401", kid, r, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed != "" {
		t.Fatal(failed)
	}
	times := idp.fetchTimes()
	flood := times[before:]
	if most := int(elapsed/time.Second) + 1; len(flood) > most || len(flood) == 0 {
		t.Fatalf("%d requests with unknown kids in %s made %d JWKS fetches; want 1..%d", sent, elapsed, len(flood), most)
	}
	for i := 1; i < len(times); i++ {
		// 50ms of slack for the IdP's clock against the gateway's timer
		if gap := times[i].Sub(times[i-1]); gap < 950*time.Millisecond {
			t.Fatalf("JWKS fetches %d and %d %s apart; want at least min_interval 1s", i-1, i, gap)
		}
	}
	t.Logf("%d requests with unknown kids in %s: %d JWKS fetches", sent, elapsed.Round(time.Millisecond), len(flood))
}
