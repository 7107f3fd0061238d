// Package auth is the gateway's authentication and authorization filter:
// consumers with API keys and basic-auth credentials, JWTs through
// package jwt, and a route's auth: any_of / all_of methods, groups and
// claims. A request without valid credentials gets 401 with a
// WWW-Authenticate challenge per method; an authenticated consumer the
// route does not admit gets 403. On success the filter sets the request's
// consumer and the consumer headers, and removes the credentials before
// the request goes upstream.
//
// builder.go builds (and shares JWT verifiers between routes and
// reloads); filter.go is the request path; consumers.go the consumer
// table, API keys and the basic-auth cache; credentials.go the
// credential parsers.
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/auth/jwt"
	"fastgate/core/config"
)

// Metric names (README "Authentication").
const (
	metricFailures  = "fastgate_auth_failures_total"
	metricConsumers = "fastgate_consumer_requests_total"
	saltLen         = 32
)

// Errors the filter answers with, built once.
var (
	errMissing   = &core.Error{Status: fasthttp.StatusUnauthorized, Err: errors.New("authentication required")}
	errInvalid   = &core.Error{Status: fasthttp.StatusUnauthorized, Err: errors.New("invalid credentials")}
	errConflict  = &core.Error{Status: fasthttp.StatusUnauthorized, Err: errors.New("credentials name different consumers")}
	errForbidden = &core.Error{Status: fasthttp.StatusForbidden, Err: errors.New("consumer not allowed on this route")}
	errClaims    = &core.Error{Status: fasthttp.StatusForbidden, Err: errors.New("token lacks a claim this route requires")}
)

// Options configure a Builder.
type Options struct {
	// Logger receives the JWT verifiers' JWKS failures. Default
	// slog.Default().
	Logger *slog.Logger
	// Client fetches JWKS URLs. Default: the jwt package's.
	Client *http.Client
	// Now is the JWKS refresh clock. Default time.Now. Requests are
	// checked at their own time (fasthttp's ctx.Time).
	Now func() time.Time
}

// Builder is a core.FilterBuilder for route auth. It keeps one JWT
// Verifier per issuer config, shared by every route of that issuer and
// kept across reloads while a route filter uses it, and the bcrypt
// semaphore and password-cache salt of every filter. It is safe for
// concurrent use. Close it after the gateway has shut down.
type Builder struct {
	opts Options
	log  *slog.Logger
	// sem bounds concurrent bcrypt compares to GOMAXPROCS.
	sem chan struct{}
	// salt of the remembered basic-auth passwords, random per process.
	salt [saltLen]byte

	mu        sync.Mutex
	verifiers []*sharedVerifier
}

var _ core.FilterBuilder = (*Builder)(nil)

// sharedVerifier is a Verifier and the filters that use it.
type sharedVerifier struct {
	cfg  *config.JWTIssuer
	v    *jwt.Verifier
	refs int
}

// spec is what a route's Filter is built from: its Key.
type spec struct {
	Auth      config.Auth
	Consumers []*config.Consumer
	APIKey    config.APIKeySource
	JWT       []*config.JWTIssuer // the issuers the route names, in method order
}

// NewBuilder returns a Builder.
func NewBuilder(o Options) *Builder {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Builder{opts: o, log: log, sem: make(chan struct{}, runtime.GOMAXPROCS(0))}
	rand.Read(b.salt[:]) //nolint:errcheck // crypto/rand.Read never fails
	return b
}

// Key returns the route's auth with everything it is built from, nil for
// a route without auth.
func (b *Builder) Key(cfg *config.Config, rc *config.Route) any {
	if rc.Auth == nil {
		return nil
	}
	s := &spec{Auth: *rc.Auth, Consumers: cfg.Consumers, APIKey: cfg.APIKey}
	for _, m := range methodNames(rc.Auth) {
		if j := jwtIssuer(cfg, m); j != nil {
			s.JWT = append(s.JWT, j)
		}
	}
	return s
}

// Validate compiles the route's auth without a verifier or a metric.
func (b *Builder) Validate(e *core.Env) error {
	_, err := b.compile(e.Config, e.Route)
	return err
}

// Build returns the route's Filter, taking the verifiers of its JWT
// issuers (starting the ones no other filter uses).
func (b *Builder) Build(e *core.Env) (core.Filter, error) {
	f, err := b.compile(e.Config, e.Route)
	if err != nil {
		return nil, err
	}
	for i := range f.methods {
		m := &f.methods[i]
		if m.kind != kindJWT {
			continue
		}
		if m.v, err = b.acquire(m.issuer); err != nil {
			f.Close() //nolint:errcheck
			return nil, fmt.Errorf("auth: %s: %w", m.name, err)
		}
	}
	f.counters(e)
	return f, nil
}

// Close stops every verifier still running. Call it once the gateway is
// shut down (its snapshots have closed their Filters).
func (b *Builder) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.verifiers {
		s.v.Close() //nolint:errcheck
	}
	b.verifiers = nil
}

// acquire returns the running verifier of issuer cfg, making and starting
// it when no filter has one with an equal config.
func (b *Builder) acquire(cfg *config.JWTIssuer) (*jwt.Verifier, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.verifiers {
		if reflect.DeepEqual(s.cfg, cfg) {
			s.refs++
			return s.v, nil
		}
	}
	v, err := jwt.New(cfg, jwt.Options{Logger: b.log.With("jwt", cfg.Name), Client: b.opts.Client, Now: b.opts.Now})
	if err != nil {
		return nil, err
	}
	v.Start()
	b.verifiers = append(b.verifiers, &sharedVerifier{cfg: cfg, v: v, refs: 1})
	return v, nil
}

// release drops a filter's reference to v, closing it when it was the
// last.
func (b *Builder) release(v *jwt.Verifier) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, s := range b.verifiers {
		if s.v != v {
			continue
		}
		if s.refs--; s.refs == 0 {
			s.v.Close() //nolint:errcheck
			b.verifiers = append(b.verifiers[:i], b.verifiers[i+1:]...)
		}
		return
	}
}

// verifierCount returns how many verifiers run, for tests.
func (b *Builder) verifierCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.verifiers)
}

// methodNames lists a route's distinct methods, any_of's first.
func methodNames(a *config.Auth) []string {
	var names []string
	for _, l := range [][]string{a.AnyOf, a.AllOf} {
		for _, m := range l {
			if !contains(names, m) {
				names = append(names, m)
			}
		}
	}
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func jwtIssuer(cfg *config.Config, method string) *config.JWTIssuer {
	if len(method) <= len(config.AuthJWTPrefix) || method[:len(config.AuthJWTPrefix)] != config.AuthJWTPrefix {
		return nil
	}
	return config.JWTIssuerByName(cfg, method[len(config.AuthJWTPrefix):])
}

// compile makes the route's Filter without verifiers or counters.
func (b *Builder) compile(cfg *config.Config, rc *config.Route) (*Filter, error) {
	a := rc.Auth
	f := &Filter{
		b:              b,
		route:          rc.Name,
		keep:           a.KeepCredentials,
		consumerHeader: a.ConsumerHeader,
		groupsHeader:   a.GroupsHeader,
		groups:         a.Groups,
		src:            keySource{header: cfg.APIKey.Header, query: cfg.APIKey.Query, bearer: cfg.APIKey.Bearer},
		consumers:      newConsumers(b, cfg.Consumers),
	}
	names := methodNames(a)
	if len(names) == 0 {
		return nil, errors.New("auth: lists no method; set any_of or all_of")
	}
	if len(names) > config.MaxAuthMethods {
		return nil, fmt.Errorf("auth: %d distinct methods; at most %d", len(names), config.MaxAuthMethods)
	}
	for _, name := range names {
		m, err := f.newMethod(cfg, name, a.Realm)
		if err != nil {
			return nil, err
		}
		f.methods = append(f.methods, m)
	}
	f.anyOf = indexes(names, a.AnyOf)
	f.allOf = indexes(names, a.AllOf)
	for name, value := range a.Claims {
		f.claims = append(f.claims, claim{name, value})
	}
	sortClaims(f.claims)
	f.tokens.init(tokenCacheSize)
	return f, nil
}

func indexes(names, list []string) []uint8 {
	var out []uint8
	for _, m := range list {
		for i, n := range names {
			if n == m {
				out = append(out, uint8(i))
				break
			}
		}
	}
	return out
}

// newMethod compiles one method and its WWW-Authenticate challenge.
func (f *Filter) newMethod(cfg *config.Config, name, realm string) (method, error) {
	m := method{name: name}
	q := strconv.Quote(realm) // the realm has neither '"' nor '\' (config)
	switch {
	case name == config.AuthAPIKey:
		m.kind = kindAPIKey
		m.challenge = []byte(`APIKey realm=` + q + `, header=` + strconv.Quote(f.src.header))
	case name == config.AuthBasic:
		m.kind = kindBasic
		m.challenge = []byte(`Basic realm=` + q + `, charset="UTF-8"`)
	default:
		j := jwtIssuer(cfg, name)
		if j == nil {
			return m, fmt.Errorf("auth: unknown method %q; want \"api_key\", \"basic\" or \"jwt:NAME\" of an issuer in the top-level jwt list", name)
		}
		m.kind = kindJWT
		m.issuer = j
		m.challenge = []byte(`Bearer realm=` + q)
	}
	return m, nil
}

// counters registers the filter's series.
func (f *Filter) counters(e *core.Env) {
	route := `route=` + strconv.Quote(f.route)
	failure := func(reason string) string {
		return metricFailures + `{` + route + `,reason="` + reason + `"}`
	}
	f.failMissing = e.Counter(failure("missing"))
	f.failInvalid = e.Counter(failure("invalid"))
	f.failForbidden = e.Counter(failure("forbidden"))
	requests := func(consumer string) string {
		return metricConsumers + `{` + route + `,consumer=` + strconv.Quote(consumer) + `}`
	}
	var apiKey, basic, jwt bool
	for i := range f.methods {
		switch m := &f.methods[i]; m.kind {
		case kindAPIKey:
			apiKey = true
		case kindBasic:
			basic = true
		case kindJWT:
			jwt = true
			m.requests = e.Counter(requests(m.name))
		}
	}
	// a series per consumer that can authenticate on the route
	for i, c := range f.consumers.list {
		cc := e.Config.Consumers[c.Index]
		if jwt || apiKey && len(cc.APIKeys) > 0 || basic && cc.BasicAuth != nil {
			f.consumers.list[i].requests = e.Counter(requests(c.Name))
		}
	}
}
