package jwt

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fastgate/core/config"
)

// jwksServer serves a JWK set on loopback and counts the fetches.
type jwksServer struct {
	*httptest.Server
	mu           sync.Mutex
	body         string
	cacheControl string
	status       int
	requests     atomic.Int64
}

func newJWKSServer(t *testing.T, body string) *jwksServer {
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		body, cc, status := s.body, s.cacheControl, s.status
		s.mu.Unlock()
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body, cacheControl string, status int) {
	s.mu.Lock()
	s.body, s.cacheControl, s.status = body, cacheControl, status
	s.mu.Unlock()
}

func jwksIssuer(url string) *config.JWTIssuer {
	return &config.JWTIssuer{Algorithms: []string{"ES256"}, JWKSURL: url}
}

func TestJWKSTTL(t *testing.T) {
	v := newVerifier(t, jwksIssuer("http://127.0.0.1:1/"), Options{})
	f := func(cc string, want time.Duration) {
		t.Helper()
		if got := v.jwks.ttl(cc); got != want {
			t.Fatalf("ttl(%q) got %s; want %s", cc, got, want)
		}
	}
	f("", 5*time.Minute)
	f("public", 5*time.Minute)
	f("max-age=120", 2*time.Minute)
	f("public, max-age=600, must-revalidate", 10*time.Minute)
	f(`max-age="90"`, 90*time.Second)
	f("MAX-AGE = 90", 90*time.Second)
	f("max-age=5", 30*time.Second)
	f("max-age=0", 30*time.Second)
	f("no-store", 30*time.Second)
	f("max-age=99999999", 24*time.Hour)
	f("max-age=99999999999999999999", 5*time.Minute)
	f("max-age=-1", 5*time.Minute)
}

// TestJWKSRefresh drives the refresh by hand on a virtual clock: the set
// lives as long as its max-age says, an unknown kid brings the next fetch
// forward to min_interval after the last, a rotated-out kid is rejected
// at once (also for a token in the cache), and an unchanged key keeps its
// cached tokens.
func TestJWKSRefresh(t *testing.T) {
	k := keysOnce()
	k1, k2 := jwkOf("k1", "", &k.p256.PublicKey), jwkOf("k2", "", &k.p384.PublicKey)
	srv := newJWKSServer(t, jwks(k1))
	srv.set(jwks(k1), "max-age=120", 200)
	cfg := jwksIssuer(srv.URL)
	cfg.Algorithms = []string{"ES256", "ES384"}
	v := newVerifier(t, cfg, Options{})
	step := func(at time.Duration, wantFetches int64, wantWait time.Duration) {
		t.Helper()
		wait := v.step(t0.Add(at))
		if got := srv.requests.Load(); got != wantFetches || wait != wantWait {
			t.Fatalf("step at +%s: %d fetches, wait %s; want %d, %s", at, got, wait, wantFetches, wantWait)
		}
	}
	verify := func(tok string, at time.Duration, want *Error) {
		t.Helper()
		if _, e := v.Verify([]byte(tok), t0.Add(at)); e != want {
			t.Fatalf("Verify at +%s got %v; want %v", at, e, want)
		}
	}
	tok1 := sign(t, "ES256", "k1", k.p256, claims())
	tok2 := sign(t, "ES384", "k2", k.p384, claims())

	verify(tok1, 0, ErrUnknownKid) // before the first fetch
	step(0, 1, time.Minute*2)
	verify(tok1, 0, nil)
	step(119*time.Second, 1, time.Second)
	step(120*time.Second, 2, 2*time.Minute) // max-age ran out

	// rotation: k2 appears; its first token asks for a refresh
	srv.set(jwks(k1, k2), "max-age=120", 200)
	verify(tok2, 121*time.Second, ErrUnknownKid)
	step(120*time.Second+500*time.Millisecond, 2, 500*time.Millisecond) // min_interval 1s after the last fetch
	step(121*time.Second, 3, 2*time.Minute)
	verify(tok2, 121*time.Second, nil)
	if s := v.Stats(); s.UnknownKidRefreshes != 1 || s.JWKSFetches != 3 {
		t.Fatalf("Stats got %+v; want 1 unknown-kid refresh of 3 fetches", s)
	}

	// k1 is removed: its cached token is rejected after the next fetch,
	// k2's cached token stays cached (the unchanged key is kept).
	verify(tok1, 122*time.Second, nil)
	hits := v.Stats().CacheHits
	srv.set(jwks(k2), "", 200)
	step(241*time.Second, 4, 5*time.Minute)
	verify(tok1, 242*time.Second, ErrUnknownKid)
	verify(tok2, 242*time.Second, nil)
	if got := v.Stats().CacheHits; got != hits+1 {
		t.Fatalf("cache hits got %d; want %d: the unchanged k2 should keep its cached token", got, hits+1)
	}
}

// TestJWKSFlood: a thousand tokens with unknown kids, one per virtual
// millisecond, cost one fetch per min_interval.
func TestJWKSFlood(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, jwks(jwkOf("k1", "", &k.p256.PublicKey)))
	v := newVerifier(t, jwksIssuer(srv.URL), Options{})
	v.step(t0)
	for i := range 1000 {
		at := t0.Add(time.Duration(i+1) * time.Millisecond)
		tok := sign(t, "ES256", "unknown-"+string(rune('a'+i%26))+strings.Repeat("x", i%7), k.p256, claims())
		if _, e := v.Verify([]byte(tok), at); e != ErrUnknownKid {
			t.Fatalf("token %d got %v; want %v", i, e, ErrUnknownKid)
		}
		v.step(at)
	}
	// 1ms..1000ms after the first fetch: the one at 1000ms is the only
	// refresh.
	if got := srv.requests.Load(); got != 2 {
		t.Fatalf("got %d fetches for 1000 unknown kids in 1s; want 2 (the first and one refresh)", got)
	}
}

// TestJWKSFloodRealTime: the refresh goroutine under a flood of
// unknown kids fetches at most once per min_interval.
func TestJWKSFloodRealTime(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, jwks(jwkOf("k1", "", &k.p256.PublicKey)))
	cfg := jwksIssuer(srv.URL)
	const minInterval = 50 * time.Millisecond
	cfg.JWKSRefresh.MinInterval = config.Duration(minInterval)
	v := newVerifier(t, cfg, Options{})
	start := time.Now()
	v.Start()
	toks := make([][]byte, 100)
	for i := range toks {
		toks[i] = []byte(sign(t, "ES256", "nope"+string(rune('a'+i%26)), k.p256, claims()))
	}
	for i := range 1000 {
		v.Verify(toks[i%len(toks)], t0)
	}
	v.Close()
	elapsed := time.Since(start)
	if got, most := srv.requests.Load(), 2+int64(elapsed/minInterval); got > most || got < 1 {
		t.Fatalf("got %d fetches in %s with min_interval %s; want 1..%d", got, elapsed, minInterval, most)
	}
}

// TestJWKSStart: Start fetches before returning, the goroutine picks up
// a rotation an unknown kid asks for, Close stops it.
func TestJWKSStart(t *testing.T) {
	k := keysOnce()
	k1, k2 := jwkOf("k1", "", &k.p256.PublicKey), jwkOf("k2", "", &k.p256.PublicKey)
	srv := newJWKSServer(t, jwks(k1))
	cfg := jwksIssuer(srv.URL)
	cfg.JWKSRefresh.MinInterval = config.Duration(time.Millisecond)
	v := newVerifier(t, cfg, Options{})
	fetched := make(chan struct{}, 10)
	v.jwks.onFetch = func() { fetched <- struct{}{} }
	v.Start()
	<-fetched
	if _, e := v.Verify([]byte(sign(t, "ES256", "k1", k.p256, claims())), t0); e != nil {
		t.Fatalf("k1 after Start got %v; want valid", e)
	}
	srv.set(jwks(k1, k2), "", 200)
	tok2 := []byte(sign(t, "ES256", "k2", k.p256, claims()))
	if _, e := v.Verify(tok2, t0); e != ErrUnknownKid {
		t.Fatalf("k2 before the refresh got %v; want %v", e, ErrUnknownKid)
	}
	select {
	case <-fetched:
	case <-time.After(10 * time.Second):
		t.Fatal("no refresh within 10s of an unknown kid")
	}
	if _, e := v.Verify(tok2, t0); e != nil {
		t.Fatalf("k2 after the refresh got %v; want valid", e)
	}
	v.Close()
	v.Close()
	v.Start() // after Close: nothing
	if got := v.Stats().JWKSFetches; got != 2 {
		t.Fatalf("got %d fetches; want 2", got)
	}
}

// TestJWKSFailure: a failed fetch keeps the last good set, retries with
// backoff and logs once per minute.
func TestJWKSFailure(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, jwks(jwkOf("k1", "", &k.p256.PublicKey)))
	var logs bytes.Buffer
	v := newVerifier(t, jwksIssuer(srv.URL), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	v.step(t0)
	at := t0.Add(5 * time.Minute)
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		if i%2 == 0 {
			srv.set("<html>oops</html>", "", 200)
		} else {
			srv.set("", "", 503)
		}
		if wait := v.step(at); wait != want {
			t.Fatalf("failure %d: wait got %s; want %s", i+1, wait, want)
		}
		// Unknown kids do not shorten the backoff.
		v.Verify([]byte(sign(t, "ES256", "nope", k.p256, claims())), t0)
		if wait := v.step(at.Add(want / 2)); wait != want-want/2 {
			t.Fatalf("failure %d: kicked wait got %s; want %s", i+1, wait, want-want/2)
		}
		// the last good set still verifies a token never cached
		if _, e := v.Verify([]byte(sign(t, "ES256", "k1", k.p256, claims("i", i))), t0); e != nil {
			t.Fatalf("failure %d: k1 got %v; want valid from the last good set", i+1, e)
		}
		at = at.Add(want)
	}
	if s := v.Stats(); s.JWKSFetchErrors != 7 || s.JWKSFetches != 8 {
		t.Fatalf("Stats got %+v; want 7 errors of 8 fetches", s)
	}
	// the failures span 91s: two log lines
	if n := strings.Count(logs.String(), "JWKS fetch failed"); n != 2 {
		t.Fatalf("got %d failure log lines; want 2:\n%s", n, logs.String())
	}
	srv.set(jwks(jwkOf("k1", "", &k.p256.PublicKey)), "", 200)
	if wait := v.step(at); wait != 5*time.Minute {
		t.Fatalf("after recovery wait got %s; want 5m", wait)
	}
	if !strings.Contains(logs.String(), "JWKS fetch recovered") {
		t.Fatalf("no recovery log:\n%s", logs.String())
	}
}
