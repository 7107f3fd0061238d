package auth

import (
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/auth/jwt"
	"fastgate/core/config"
	"fastgate/core/hdr"
)

// Filter authenticates and authorizes a route's requests. It is safe for
// concurrent use and allocates nothing per request once its caches are
// warm (a basic-auth password checked once, a JWT seen once).
type Filter struct {
	b       *Builder
	route   string
	methods []method // distinct, any_of's first
	anyOf   []uint8  // indexes into methods
	allOf   []uint8
	groups  []string
	claims  []claim
	keep    bool

	consumerHeader, groupsHeader string

	src       keySource
	consumers *consumers
	tokens    tokenCache

	failMissing, failInvalid, failForbidden *metrics.Counter
	closeOnce                               sync.Once
}

var (
	_ core.Filter = (*Filter)(nil)
	_ io.Closer   = (*Filter)(nil)
)

type kind uint8

const (
	kindAPIKey kind = iota + 1
	kindBasic
	kindJWT
)

// method is one compiled auth method of a route.
type method struct {
	kind      kind
	name      string // "api_key", "basic", "jwt:NAME"
	challenge []byte // the WWW-Authenticate value
	issuer    *config.JWTIssuer
	v         *jwt.Verifier
	// requests counts JWT consumers the config does not list, as
	// consumer="jwt:NAME".
	requests *metrics.Counter
}

type claim struct{ name, value string }

func sortClaims(cs []claim) {
	slices.SortFunc(cs, func(a, b claim) int { return strings.Compare(a.name, b.name) })
}

// result is what one method made of the request.
type result struct {
	out  outcome
	c    *consumer  // the configured consumer, nil for an unknown JWT subject
	tok  *jwt.Token // kindJWT
	jerr *jwt.Error // kindJWT, invalid
}

type results [config.MaxAuthMethods]result

var strWWWAuthenticate = "WWW-Authenticate"

// Filter runs all_of, then any_of up to the first method that succeeds,
// then the groups and claims; it answers 401 or 403 itself.
func (f *Filter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	var res results
	now := ctx.Time()
	win := -1
	for _, i := range f.allOf {
		rs := f.try(ctx, now, &res, i)
		if rs.out != succeeded {
			return f.unauthorized(ctx, r, &res, nil)
		}
		if win < 0 {
			win = int(i)
		} else if conflict(&res[win], rs) {
			return f.unauthorized(ctx, r, &res, errConflict)
		}
	}
	if len(f.anyOf) > 0 {
		got := -1
		for _, i := range f.anyOf {
			if f.try(ctx, now, &res, i).out == succeeded {
				got = int(i)
				break
			}
		}
		switch {
		case got < 0:
			return f.unauthorized(ctx, r, &res, nil)
		case win < 0:
			win = got
		case conflict(&res[win], &res[got]):
			return f.unauthorized(ctx, r, &res, errConflict)
		}
	}
	c, groups, requests := f.identify(&f.methods[win], &res[win])
	if e := f.authorize(c, &res); e != nil {
		f.failForbidden.Inc()
		r.Fail(ctx, e)
		return false
	}
	r.SetConsumer(c)
	f.setHeaders(&ctx.Request.Header, c.Name, groups)
	if !f.keep {
		f.strip(ctx)
	}
	requests.Inc()
	return true
}

// Close releases the filter's JWT verifiers. Core calls it once no
// snapshot uses the Filter; it is idempotent.
func (f *Filter) Close() error {
	f.closeOnce.Do(func() {
		for i := range f.methods {
			if v := f.methods[i].v; v != nil {
				f.b.release(v)
			}
		}
	})
	return nil
}

// try runs method i once per request and returns its result.
func (f *Filter) try(ctx *fasthttp.RequestCtx, now time.Time, res *results, i uint8) *result {
	rs := &res[i]
	if rs.out != notTried {
		return rs
	}
	switch m := &f.methods[i]; m.kind {
	case kindAPIKey:
		rs.out = missing
		if key := f.src.extract(ctx); key != nil {
			if rs.c = f.consumers.apiKey(key); rs.c != nil {
				rs.out = succeeded
			} else {
				rs.out = invalid
			}
		}
	case kindBasic:
		rs.c, rs.out = f.basic(ctx)
	case kindJWT:
		rs.out = missing
		if token := m.v.Extract(&ctx.Request); token != nil {
			if rs.tok, rs.jerr = m.v.Verify(token, now); rs.jerr != nil {
				rs.out = invalid
			} else {
				rs.out = succeeded
				rs.c = f.consumers.byName[rs.tok.Subject]
			}
		}
	}
	return rs
}

// basic checks the request's basic-auth credential.
func (f *Filter) basic(ctx *fasthttp.RequestCtx) (*consumer, outcome) {
	var buf basicBuf
	user, pass, o := parseBasic(ctx.Request.Header.Peek(strAuthorization), &buf)
	if o != succeeded {
		return nil, o
	}
	return f.consumers.basic(user, pass)
}

// conflict reports whether two results name different configured
// consumers.
func conflict(a, b *result) bool {
	return a.c != nil && b.c != nil && a.c != b.c
}

// identify returns the consumer of the winning method's result, its
// comma-joined groups and its request counter. A JWT whose subject is a
// configured consumer is that consumer, with the token's groups added to
// its own; another subject is the token's own consumer (Index -1).
func (f *Filter) identify(m *method, rs *result) (*core.Consumer, string, *metrics.Counter) {
	if rs.tok == nil || len(rs.tok.Groups) == 0 {
		if c := rs.c; c != nil {
			return &c.Consumer, c.groups, c.requests
		}
		return rs.tok.Consumer, "", m.requests
	}
	id := f.tokens.get(rs.tok)
	if id == nil {
		// slow path: the first request with this token
		id = newIdentity(rs.tok, rs.c, m.requests)
		f.tokens.put(rs.tok, id)
	}
	return id.consumer, id.groups, id.requests
}

// authorize returns the 403 of a consumer outside the route's groups or
// of an authenticating JWT without a required claim, else nil.
func (f *Filter) authorize(c *core.Consumer, res *results) *core.Error {
	if len(f.groups) > 0 && !anyIn(c.Groups, f.groups) {
		return errForbidden
	}
	if len(f.claims) == 0 {
		return nil
	}
	for i := range f.methods {
		tok := res[i].tok
		if tok == nil || res[i].out != succeeded {
			continue
		}
		for _, cl := range f.claims {
			if !tok.HasClaim(cl.name, cl.value) {
				return errClaims
			}
		}
	}
	return nil
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

// setHeaders replaces the client's consumer headers by the consumer's.
func (f *Filter) setHeaders(h *fasthttp.RequestHeader, name, groups string) {
	hdr.DelRequest(h, f.consumerHeader)
	hdr.DelRequest(h, f.groupsHeader)
	h.Set(f.consumerHeader, name)
	if groups != "" {
		h.Set(f.groupsHeader, groups)
	}
}

// strip removes the credentials of every method of the route, so that
// none reaches the upstream.
func (f *Filter) strip(ctx *fasthttp.RequestCtx) {
	for i := range f.methods {
		switch m := &f.methods[i]; m.kind {
		case kindAPIKey:
			f.src.strip(ctx)
		case kindBasic:
			stripAuthorization(ctx, schemeBasic)
		case kindJWT:
			// Strip deletes a query token from the parsed arguments only;
			// the query string sent upstream must lose it too.
			q := m.issuer.From.Query
			inQuery := q != "" && ctx.QueryArgs().Has(q)
			m.v.Strip(&ctx.Request)
			if inQuery {
				deleteQueryArg(ctx, q)
			}
		}
	}
}

// unauthorized answers 401 with e (nil: missing or invalid credentials,
// as the methods found) and one challenge per method.
func (f *Filter) unauthorized(ctx *fasthttp.RequestCtx, r *core.Request, res *results, e *core.Error) bool {
	if e == nil {
		e = errMissing
		for i := range f.methods {
			if res[i].out == invalid {
				e = errInvalid
				break
			}
		}
	}
	if e == errMissing {
		f.failMissing.Inc()
	} else {
		f.failInvalid.Inc()
	}
	r.Fail(ctx, e)
	h := &ctx.Response.Header
	for i := range f.methods {
		m := &f.methods[i]
		if jerr := res[i].jerr; jerr != nil {
			// RFC 6750 §3.1: a bad bearer token says why.
			s := acquireScratch()
			s.b = appendInvalidToken(append(s.b[:0], m.challenge...), jerr.Description)
			h.AddBytesV(strWWWAuthenticate, s.b)
			releaseScratch(s)
			continue
		}
		h.AddBytesV(strWWWAuthenticate, m.challenge)
	}
	return false
}

// appendInvalidToken appends the invalid_token error of RFC 6750 with
// desc as a quoted string (without '"', '\' and control characters).
func appendInvalidToken(dst []byte, desc string) []byte {
	dst = append(dst, `, error="invalid_token", error_description="`...)
	for i := 0; i < len(desc); i++ {
		if c := desc[i]; c >= ' ' && c != '"' && c != '\\' && c != 0x7f {
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// scratch is a pooled buffer for header values built per request.
type scratch struct{ b []byte }

const maxScratch = 4 << 10

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func acquireScratch() *scratch { return scratchPool.Get().(*scratch) }

// releaseScratch pools s unless it grew too big to keep.
func releaseScratch(s *scratch) {
	if cap(s.b) <= maxScratch {
		scratchPool.Put(s)
	}
}

// identity is the consumer of a JWT with groups, computed once per token.
type identity struct {
	consumer *core.Consumer
	groups   string
	requests *metrics.Counter
}

// newIdentity joins the token's groups to its configured consumer's (c),
// or takes the token's consumer when c is nil.
func newIdentity(tok *jwt.Token, c *consumer, unknown *metrics.Counter) *identity {
	if c == nil {
		return &identity{consumer: tok.Consumer, groups: strings.Join(tok.Groups, ","), requests: unknown}
	}
	groups := slices.Clone(c.Groups)
	for _, g := range tok.Groups {
		if !contains(groups, g) {
			groups = append(groups, g)
		}
	}
	return &identity{
		consumer: &core.Consumer{Name: c.Name, Groups: groups, Index: c.Index},
		groups:   strings.Join(groups, ","),
		requests: c.requests,
	}
}

// tokenCacheSize bounds a filter's token identities: past it the cache
// starts over (the jwt Verifier's own cache defaults to 10000 tokens).
const tokenCacheSize = 1 << 14

// tokenCache maps verified tokens (the jwt Verifier hands out the same
// *Token for the same token while it caches it) to their identity. A hit
// allocates nothing.
type tokenCache struct {
	m   atomic.Pointer[sync.Map]
	n   atomic.Int64
	max int64
}

func (c *tokenCache) init(max int) {
	c.max = int64(max)
	c.m.Store(new(sync.Map))
}

func (c *tokenCache) get(t *jwt.Token) *identity {
	if v, ok := c.m.Load().Load(t); ok {
		return v.(*identity)
	}
	return nil
}

// put stores id; a full cache is dropped whole, which costs the live
// tokens one slow path each.
func (c *tokenCache) put(t *jwt.Token, id *identity) {
	if c.n.Add(1) > c.max {
		c.m.Store(new(sync.Map))
		c.n.Store(1)
	}
	c.m.Load().Store(t, id)
}
