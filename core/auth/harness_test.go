package auth

import (
	"encoding/base64"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	jwtlib "github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/coretest"
	"fastgate/core/ratelimit"
)

// Test credentials: testBcrypt is bcrypt("open-sesame", cost 4).
const (
	testBcrypt   = "$2a$04$th/QcBZKJ1f22G6wMqaAd./Z1d3fxUFkBks3wM3POE.WPUK22BT1m"
	testPassword = "open-sesame"
	testSecret   = "0123456789abcdef0123456789abcdef-test-secret"
	billingKey   = "billing-key-0123456789"
	opsKey       = "ops-key-0123456789abcd"
)

// base is the config the tests add routes to: an upstream at 10.0.0.1:80,
// consumers billing (API key, group internal), ops (API key and basic
// auth, groups ops and internal) and mobile (basic auth, no group), and
// an HS256 issuer corp with groups in "groups".
const base = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
consumers:
  - {name: billing, groups: [internal], api_keys: ["` + billingKey + `"]}
  - {name: ops, groups: [ops, internal], api_keys: ["` + opsKey + `"], basic_auth: {username: ops, password_hash: "` + testBcrypt + `"}}
  - {name: mobile, basic_auth: {username: "mobile app", password_hash: "` + testBcrypt + `"}}
jwt:
  - {name: corp, algorithms: [HS256], secret: "` + testSecret + `", groups_claim: groups}
`

// harness runs a real core.Gateway (coretest) with this package's Builder
// and the rate limit Builder after it, and an upstream at 10.0.0.1:80
// that records what it receives.
type harness struct {
	t  testing.TB
	g  *coretest.Gateway
	b  *Builder
	up *recorder
}

func newHarness(t testing.TB, cfg string) *harness {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &harness{t: t, up: &recorder{}}
	h.b = NewBuilder(Options{Logger: log})
	rl := ratelimit.NewBuilder(ratelimit.Options{Logger: log})
	t.Cleanup(func() { h.b.Close(); rl.Close() }) // after the gateway's Stop, registered below
	h.g = coretest.Start(t, base+cfg, core.Options{Filters: []core.FilterBuilder{h.b, rl}},
		map[string]fasthttp.RequestHandler{"10.0.0.1:80": h.up.serve})
	return h
}

// recorder is the upstream: it keeps the last request it received.
type recorder struct {
	mu   sync.Mutex
	n    int
	last fasthttp.Request
}

func (u *recorder) serve(ctx *fasthttp.RequestCtx) {
	u.mu.Lock()
	u.n++
	ctx.Request.CopyTo(&u.last)
	u.mu.Unlock()
	ctx.WriteString("ok") //nolint:errcheck
}

// seen returns how many requests reached the upstream, and the last one's
// header value of name and its request URI.
func (u *recorder) seen(name string) (n int, value, uri string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n, string(u.last.Header.Peek(name)), string(u.last.Header.RequestURI())
}

// get sends GET uri with "Name: value" headers; the caller releases the
// response.
func (h *harness) get(uri string, headers ...string) *fasthttp.Response {
	h.t.Helper()
	return h.g.Do("GET", "http://gw.local"+uri, headers...)
}

// basicAuth is the Authorization value of user and password.
func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// token mints an HS256 token for sub with groups and extra claims,
// expiring in an hour.
func token(t testing.TB, sub string, groups []string, claims map[string]any) string {
	t.Helper()
	c := jwtlib.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	if groups != nil {
		c["groups"] = groups
	}
	for k, v := range claims {
		c[k] = v
	}
	s, err := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, c).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatalf("sign: %s", err)
	}
	return s
}

// challenges returns the response's WWW-Authenticate values joined by
// " | ".
func challenges(resp *fasthttp.Response) string {
	var vs []string
	for _, v := range resp.Header.PeekAll("WWW-Authenticate") {
		vs = append(vs, string(v))
	}
	return strings.Join(vs, " | ")
}

func mustParseConsumers(t testing.TB) []*config.Consumer {
	t.Helper()
	return coretest.Config(t, base+`routes: [{upstream: users}]`).Consumers
}
