// Package jwt verifies the JSON Web Tokens of one issuer (RFC 7519) for
// the auth filter: the token's place in the request, the pinned
// algorithms, the keys (HMAC secret, PEM files, inline or remote JWK sets
// refreshed in the background), the registered claims, and a cache of
// verified tokens that makes a token seen again cost one map lookup and no
// allocation.
//
// Signatures and claims are checked by github.com/golang-jwt/jwt/v5; this
// package chooses the key. An issuer's algorithms are all HMAC or all
// public-key (config validation), and a key is only ever used with an
// algorithm of its own type, so an RSA public key can never be taken for
// an HMAC secret (the "alg confusion" attack).
//
// verifier.go verifies; keys.go holds the key sets, cache.go the verified
// tokens, jwks.go the JWKS refresh, source.go the token's place.
package jwt

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	jwtlib "github.com/golang-jwt/jwt/v5"

	"fastgate/core"
	"fastgate/core/auth/jwt/jwk"
	"fastgate/core/config"
)

// Error is why a token was rejected. Its Description is a constant,
// JSON-safe and quotable text, meant for the WWW-Authenticate
// error_description (RFC 6750 §3); Errors are package-level values, so
// returning one allocates nothing and callers may compare them.
type Error struct{ Description string }

// Error implements error.
func (e *Error) Error() string { return "jwt: " + e.Description }

// The reasons Verify gives.
var (
	ErrTooLarge       = &Error{"token too large"}
	ErrMalformed      = &Error{"token malformed"}
	ErrAlgNotAllowed  = &Error{"algorithm not allowed"}
	ErrUnknownKid     = &Error{"unknown key id"}
	ErrNoKey          = &Error{"no key for the token's algorithm"}
	ErrKeyMismatch    = &Error{"key does not match the algorithm"}
	ErrSignature      = &Error{"signature invalid"}
	ErrExpired        = &Error{"token expired"}
	ErrNotYetValid    = &Error{"token not valid yet"}
	ErrIssuedInFuture = &Error{"token issued in the future"}
	ErrIssuer         = &Error{"issuer not accepted"}
	ErrAudience       = &Error{"audience not accepted"}
	ErrNoExpiry       = &Error{"token has no expiry"}
	ErrNoConsumer     = &Error{"token has no consumer claim"}
	ErrCritical       = &Error{"token has unsupported critical headers"}
	ErrInvalid        = &Error{"token invalid"}
)

// Options configure a Verifier.
type Options struct {
	// Logger receives JWKS fetch failures (at most one line per minute
	// while they last), recoveries and skipped keys. Default
	// slog.Default().
	Logger *slog.Logger
	// Client fetches jwks_url. Default: a client with a 5s timeout.
	Client *http.Client
	// Now is the refresh clock (when the JWK set expires, when the next
	// fetch may run). Default time.Now. Verify takes its time as a
	// parameter.
	Now func() time.Time
}

// Verifier verifies the tokens of one issuer. New builds it without
// network or goroutine; Start fetches the JWKS URL and keeps it fresh
// until Close. Extract, Strip, Verify and Stats are safe for concurrent
// use; Start and Close may be called from any goroutine.
type Verifier struct {
	name          string
	issuer        string // iss must equal it; "" unchecked
	algs          []string
	hmac          bool
	leeway        time.Duration
	maxSize       int
	consumerClaim string
	groupsClaim   string
	parserOpts    []jwtlib.ParserOption
	src           source
	log           *slog.Logger
	now           func() time.Time

	static []*key                 // secret, public_keys and inline jwks; never change
	keys   atomic.Pointer[keySet] // static plus the last good JWKS; swapped on refresh
	cache  *cache
	jwks   *fetcher // nil without jwks_url

	fetches, fetchErrors, kidRefreshes atomic.Uint64

	startOnce, closeOnce sync.Once
}

// Stats are a Verifier's counters since New.
type Stats struct {
	// JWKSFetches counts JWKS URL fetch attempts; JWKSFetchErrors the
	// ones that failed (the last good set was kept).
	JWKSFetches, JWKSFetchErrors uint64
	// UnknownKidRefreshes counts fetches a token with an unknown kid
	// brought forward.
	UnknownKidRefreshes uint64
	// CacheHits counts Verify calls answered from the verified-token
	// cache; CacheMisses the ones that checked a signature.
	CacheHits, CacheMisses uint64
}

// Stats returns the counters.
func (v *Verifier) Stats() Stats {
	s := Stats{
		JWKSFetches:         v.fetches.Load(),
		JWKSFetchErrors:     v.fetchErrors.Load(),
		UnknownKidRefreshes: v.kidRefreshes.Load(),
	}
	s.CacheHits, s.CacheMisses = v.cache.stats()
	return s
}

// Token is a verified token. It is shared by every request carrying the
// same token and must not be modified.
type Token struct {
	// Subject is the consumer claim's value (config consumer_claim).
	Subject string
	// Groups are the groups claim's values (config groups_claim), nil
	// without one.
	Groups []string
	// Claims are the token's claims as decoded JSON: numbers are
	// json.Number, so they keep their text. Read-only.
	Claims map[string]any
	// Consumer is the request's consumer: Name Subject, Groups, Index -1.
	Consumer *core.Consumer

	exp, nbf time.Time // zero when absent
	key      *key      // the key the signature verified with
}

// HasClaim reports whether claim name has value: a string equal to it or
// holding it as a space-separated member ("scope": "read write"), an array
// with a member equal to it, a number or a boolean whose JSON text is it.
// It allocates nothing.
func (t *Token) HasClaim(name, value string) bool {
	switch c := t.Claims[name].(type) {
	case []any:
		for _, m := range c {
			if scalarIs(m, value) {
				return true
			}
		}
		return false
	case string:
		return c == value || spaceMember(c, value)
	default:
		return scalarIs(c, value)
	}
}

func scalarIs(c any, value string) bool {
	switch c := c.(type) {
	case string:
		return c == value
	case json.Number:
		return string(c) == value
	case bool:
		return c && value == "true" || !c && value == "false"
	}
	return false
}

// spaceMember reports whether value is one of the space-separated
// members of s.
func spaceMember(s, value string) bool {
	if value == "" || strings.IndexByte(value, ' ') >= 0 {
		return false
	}
	for s != "" {
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			return s == value
		}
		if s[:i] == value {
			return true
		}
		s = s[i+1:]
	}
	return false
}

// New returns the Verifier of issuer cfg, which SetDefaults and Validate
// have passed. It reads the key files and parses the inline JWKS; it
// starts nothing and fetches nothing (see Start).
func New(cfg *config.JWTIssuer, o Options) (*Verifier, error) {
	v := &Verifier{
		name:          cfg.Name,
		issuer:        cfg.Issuer,
		algs:          append([]string(nil), cfg.Algorithms...),
		leeway:        config.DefaultJWTLeeway.D(),
		maxSize:       cfg.MaxTokenSize.Int(),
		consumerClaim: cfg.ConsumerClaim,
		groupsClaim:   cfg.GroupsClaim,
		log:           o.Logger,
		now:           o.Now,
	}
	if err := v.checkAlgs(); err != nil {
		return nil, err
	}
	if cfg.Leeway != nil {
		v.leeway = cfg.Leeway.D()
	}
	if v.maxSize <= 0 {
		v.maxSize = config.DefaultJWTMaxTokenSize.Int()
	}
	if v.consumerClaim == "" {
		v.consumerClaim = config.DefaultJWTConsumerClaim
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.parserOpts = parserOptions(cfg, v.algs, v.leeway)
	v.src = newSource(cfg.From)
	if err := v.loadStatic(cfg); err != nil {
		return nil, fmt.Errorf("jwt: issuer %q: %w", cfg.Name, err)
	}
	v.keys.Store(newKeySet(v.static, nil))
	size := cfg.CacheSize
	if size <= 0 {
		size = config.DefaultJWTCacheSize
	}
	v.cache = newCache(size)
	if cfg.JWKSURL != "" {
		v.jwks = newFetcher(cfg, o.Client)
	}
	return v, nil
}

func (v *Verifier) checkAlgs() error {
	if len(v.algs) == 0 {
		return fmt.Errorf("jwt: issuer %q: no algorithms; pin some, such as [RS256]", v.name)
	}
	nHMAC := 0
	for _, a := range v.algs {
		if !jwk.Known(a) {
			return fmt.Errorf("jwt: issuer %q: unknown algorithm %q; known: %s", v.name, a, strings.Join(jwk.Algorithms, " "))
		}
		if jwk.HMAC(a) {
			nHMAC++
		}
	}
	if nHMAC != 0 && nHMAC != len(v.algs) {
		return fmt.Errorf("jwt: issuer %q: algorithms mix HMAC and public-key ones; declare two issuers", v.name)
	}
	v.hmac = nHMAC > 0
	return nil
}

func parserOptions(cfg *config.JWTIssuer, algs []string, leeway time.Duration) []jwtlib.ParserOption {
	opts := []jwtlib.ParserOption{
		jwtlib.WithValidMethods(algs),
		jwtlib.WithLeeway(leeway),
		jwtlib.WithIssuedAt(),
		jwtlib.WithJSONNumber(),
		jwtlib.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwtlib.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audience) > 0 {
		opts = append(opts, jwtlib.WithAudience(cfg.Audience...))
	}
	if cfg.RequireExp == nil || *cfg.RequireExp {
		opts = append(opts, jwtlib.WithExpirationRequired())
	}
	return opts
}

// Name returns the issuer's name.
func (v *Verifier) Name() string { return v.name }

// Verify checks token at time now and returns it verified, or why it is
// not. A token verified before and still cached costs a map lookup, its
// exp and nbf checks and a key-still-current check, and allocates
// nothing. A token with an unknown kid asks the JWKS refresh to run early
// (at most one fetch per jwks_refresh.min_interval) and is rejected.
func (v *Verifier) Verify(token []byte, now time.Time) (*Token, *Error) {
	if len(token) > v.maxSize {
		return nil, ErrTooLarge
	}
	if len(token) == 0 {
		return nil, ErrMalformed
	}
	set := v.keys.Load()
	sh := v.cache.shard(xxhash.Sum64(token))
	// fast path: a token verified before, with its key still current.
	if t := sh.get(token); t != nil {
		if e := v.checkTimes(t, now); e != nil {
			return nil, e
		}
		if set.has(t.key) {
			sh.hits.Add(1)
			return t, nil
		}
		// Its key was rotated out or replaced: verify it again against
		// the current keys, which rejects it when its kid is gone.
		sh.remove(token)
	}
	sh.misses.Add(1)
	if e := v.precheck(token); e != nil {
		return nil, e
	}
	return v.verifySlow(token, now, set, sh)
}

// checkTimes re-checks a cached token's exp and nbf at now, as the
// parser does (leeway included).
func (v *Verifier) checkTimes(t *Token, now time.Time) *Error {
	if !t.exp.IsZero() && !now.Before(t.exp.Add(v.leeway)) {
		return ErrExpired
	}
	if !t.nbf.IsZero() && now.Before(t.nbf.Add(-v.leeway)) {
		return ErrNotYetValid
	}
	return nil
}

// verifySlow parses and verifies token with golang-jwt and caches it.
func (v *Verifier) verifySlow(token []byte, now time.Time, set *keySet, sh *shard) (*Token, *Error) {
	raw := string(token)
	var used *key
	var kerr *Error
	keyFunc := func(t *jwtlib.Token) (any, error) {
		used, kerr = v.pickKey(t, set)
		if kerr != nil {
			return nil, kerr
		}
		return used.pub, nil
	}
	opts := append(v.parserOpts[:len(v.parserOpts):len(v.parserOpts)], jwtlib.WithTimeFunc(func() time.Time { return now }))
	claims := jwtlib.MapClaims{}
	t, err := jwtlib.NewParser(opts...).ParseWithClaims(raw, claims, keyFunc)
	if err != nil {
		if kerr != nil {
			return nil, kerr
		}
		return nil, v.reason(err, t, claims)
	}
	tok, e := v.newToken(claims, used)
	if e != nil {
		return nil, e
	}
	sh.put(raw, tok, now, v.leeway, v.cache.perShard)
	return tok, nil
}

// pickKey chooses the key that verifies t: the kid's key, else the keys
// without kid; a token without kid tries every key of its algorithm's
// type, and the one whose signature verifies is used.
func (v *Verifier) pickKey(t *jwtlib.Token, set *keySet) (*key, *Error) {
	alg, _ := t.Header["alg"].(string)
	if !v.allowed(alg) {
		return nil, ErrAlgNotAllowed
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, ErrCritical
	}
	kidAny, hasKid := t.Header["kid"]
	kid, ok := kidAny.(string)
	if hasKid && !ok {
		return nil, ErrMalformed
	}
	var buf [8]*key
	cands, e := set.candidates(kid, alg, buf[:0])
	if e == ErrUnknownKid {
		v.wantRefresh()
	}
	if e != nil {
		return nil, e
	}
	if len(cands) == 1 {
		return cands[0], nil
	}
	signed := t.Raw[:strings.LastIndexByte(t.Raw, '.')]
	for _, k := range cands {
		if t.Method.Verify(signed, t.Signature, k.pub) == nil {
			return k, nil
		}
	}
	return nil, ErrSignature
}

func (v *Verifier) allowed(alg string) bool {
	for _, a := range v.algs {
		if a == alg {
			return true
		}
	}
	return false
}

// reason maps a golang-jwt error to the Error Verify returns.
func (v *Verifier) reason(err error, t *jwtlib.Token, claims jwtlib.MapClaims) *Error {
	if t != nil && t.Header != nil {
		if alg, _ := t.Header["alg"].(string); !v.allowed(alg) {
			return ErrAlgNotAllowed
		}
	}
	for _, m := range errorMap {
		if errors.Is(err, m.lib) {
			return m.our
		}
	}
	if errors.Is(err, jwtlib.ErrTokenRequiredClaimMissing) {
		switch {
		case claims["exp"] == nil:
			return ErrNoExpiry
		case claims["iss"] == nil:
			return ErrIssuer
		}
		return ErrAudience
	}
	if errors.Is(err, jwtlib.ErrInvalidType) {
		return ErrMalformed
	}
	return ErrInvalid
}

// errorMap is the order reasons are reported in when a token has several
// problems.
var errorMap = []struct {
	lib error
	our *Error
}{
	{jwtlib.ErrTokenMalformed, ErrMalformed},
	{jwtlib.ErrTokenSignatureInvalid, ErrSignature},
	{jwtlib.ErrTokenExpired, ErrExpired},
	{jwtlib.ErrTokenNotValidYet, ErrNotYetValid},
	{jwtlib.ErrTokenUsedBeforeIssued, ErrIssuedInFuture},
	{jwtlib.ErrTokenInvalidIssuer, ErrIssuer},
	{jwtlib.ErrTokenInvalidAudience, ErrAudience},
}

// newToken builds the Token of verified claims.
func (v *Verifier) newToken(claims jwtlib.MapClaims, used *key) (*Token, *Error) {
	sub, _ := claims[v.consumerClaim].(string)
	if sub == "" {
		return nil, ErrNoConsumer
	}
	t := &Token{Subject: sub, Claims: claims, key: used}
	if v.groupsClaim != "" {
		t.Groups = groups(claims[v.groupsClaim])
	}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		t.exp = exp.Time
	}
	if nbf, err := claims.GetNotBefore(); err == nil && nbf != nil {
		t.nbf = nbf.Time
	}
	t.Consumer = &core.Consumer{Name: sub, Groups: t.Groups, Index: -1}
	return t, nil
}

// groups reads a groups claim: an array of strings (other members are
// ignored) or a space-separated string.
func groups(c any) []string {
	switch c := c.(type) {
	case string:
		return strings.Fields(c)
	case []any:
		gs := make([]string, 0, len(c))
		for _, m := range c {
			if s, ok := m.(string); ok && s != "" {
				gs = append(gs, s)
			}
		}
		return gs
	}
	return nil
}

// key is one verification key. Keys are immutable and compared by
// pointer: a cached token is valid while its key is in the current set.
type key struct {
	kid string
	alg string           // the JWK's alg, "" for any its type fits
	pub crypto.PublicKey // []byte for HMAC
}

// fits reports whether k verifies alg.
func (k *key) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	if _, ok := k.pub.([]byte); ok {
		return jwk.HMAC(alg)
	}
	return jwk.Fits(alg, k.pub)
}
