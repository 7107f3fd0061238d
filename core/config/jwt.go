package config

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"fastgate/core/auth/jwt/jwk"
)

// JWTIssuer is one issuer of JSON Web Tokens the gateway verifies; routes
// accept its tokens with auth: {any_of: ["jwt:NAME"]}. README
// "Authentication" documents every field.
type JWTIssuer struct {
	// Name identifies the issuer in route auth ("jwt:NAME"), logs and
	// metrics. Letters, digits, '_', '.' and '-'. Required, unique.
	Name string `json:"name" yaml:"name"`

	// Issuer, when set, is the value the "iss" claim must equal. Default
	// "": iss is not checked.
	Issuer string `json:"issuer" yaml:"issuer"`

	// Audience, when set, lists accepted audiences: the "aud" claim (a
	// string or a list) must contain one of them. Default none: aud is
	// not checked.
	Audience []string `json:"audience" yaml:"audience"`

	// Algorithms pins the JWS algorithms accepted, such as [RS256] or
	// [ES256, EdDSA]; a token whose header "alg" is not listed is
	// rejected. Known: HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384
	// PS512 ES256 ES384 ES512 EdDSA ("none" never is). All HMAC (HS*,
	// verified with Secret) or all public-key (verified with PublicKeys,
	// JWKS, JWKSURL), so a public key can never be used as an HMAC secret.
	// Required.
	Algorithms []string `json:"algorithms" yaml:"algorithms"`

	// Secret is the HMAC secret of HS* algorithms, its bytes as written;
	// put it in the environment: secret: "${JWT_SECRET}". At least 32
	// bytes (HS384: 48, HS512: 64; RFC 7518 §3.2). Required with HS*,
	// forbidden otherwise. GET /config redacts it.
	Secret string `json:"secret" yaml:"secret"`

	// PublicKeys are PEM files holding a public key or a certificate (RSA
	// of at least 2048 bits, ECDSA P-256/P-384/P-521 or Ed25519), each
	// with an optional kid. Read when the config is loaded (and by
	// fastgate -check). Default none.
	PublicKeys []JWTPublicKey `json:"public_keys" yaml:"public_keys"`

	// JWKS is an inline JWK set, the JSON text {"keys": [...]}. Every key
	// in it must be usable (kty RSA, EC or OKP). Default "": none.
	JWKS string `json:"jwks" yaml:"jwks"`

	// JWKSURL is an http(s) URL serving the issuer's JWK set (such as
	// "https://idp.example.com/.well-known/jwks.json"), fetched at start
	// and refreshed as JWKSRefresh says. Keys of the set that are not
	// usable are skipped (and logged). Default "": none.
	JWKSURL string `json:"jwks_url" yaml:"jwks_url"`

	// JWKSRefresh says when JWKSURL is fetched again. Only with JWKSURL.
	JWKSRefresh JWKSRefresh `json:"jwks_refresh" yaml:"jwks_refresh"`

	// Leeway is the clock skew allowed when checking exp, nbf and iat.
	// Default (absent) 30s; "0s" allows none.
	Leeway *Duration `json:"leeway" yaml:"leeway"`

	// RequireExp rejects tokens without an "exp" claim. Default true.
	RequireExp *bool `json:"require_exp" yaml:"require_exp"`

	// MaxTokenSize is the largest token accepted, in bytes; a larger one
	// is rejected before it is decoded. Default (and zero) 8KiB.
	MaxTokenSize Size `json:"max_token_size" yaml:"max_token_size"`

	// ConsumerClaim is the claim naming the consumer (a string), which
	// must be present. Default (and "") "sub".
	ConsumerClaim string `json:"consumer_claim" yaml:"consumer_claim"`

	// GroupsClaim is the claim listing the consumer's groups, for route
	// auth.groups: a JSON array of strings or a space-separated string
	// (such as "scope"). Default "": tokens carry no groups.
	GroupsClaim string `json:"groups_claim" yaml:"groups_claim"`

	// From says where requests carry the token. Default (absent, or all
	// three empty): the Authorization header, as "Bearer <token>".
	From JWTSource `json:"from" yaml:"from"`

	// CacheSize is how many verified tokens are kept, so that a token
	// seen again costs a map lookup instead of a signature check. Default
	// (and zero) 10000.
	CacheSize int `json:"cache_size" yaml:"cache_size"`
}

// JWTPublicKey is one PEM public key file of an issuer.
type JWTPublicKey struct {
	// File is the PEM file's path, relative to the working directory.
	// Required.
	File string `json:"file" yaml:"file"`
	// Kid is the key id tokens name in their header "kid". Default "":
	// the key verifies tokens whose kid matches no other key, and tokens
	// without one.
	Kid string `json:"kid" yaml:"kid"`
}

// JWKSRefresh is the refresh policy of a JWKS URL. The set is fetched
// again when its lifetime runs out: the response's Cache-Control max-age
// clamped to [MinTTL, MaxTTL], or DefaultTTL without one. A token with an
// unknown kid triggers an early fetch; a failed fetch keeps the last good
// set and is retried with exponential backoff from MinInterval up to
// MinTTL. Fetches are never closer than MinInterval, whatever asks for
// them.
type JWKSRefresh struct {
	// MinInterval is the least time between two fetches: a flood of
	// tokens with unknown kids costs one fetch per MinInterval. Default
	// (and zero) 1s.
	MinInterval Duration `json:"min_interval" yaml:"min_interval"`
	// DefaultTTL is the set's lifetime when the response has no max-age.
	// Default (and zero) 5m.
	DefaultTTL Duration `json:"default_ttl" yaml:"default_ttl"`
	// MinTTL is the shortest lifetime a max-age may give (and the longest
	// retry backoff). Default (and zero) 30s.
	MinTTL Duration `json:"min_ttl" yaml:"min_ttl"`
	// MaxTTL is the longest lifetime a max-age may give. Default (and
	// zero) 24h.
	MaxTTL Duration `json:"max_ttl" yaml:"max_ttl"`
}

// JWTSource says where a request carries its token. The first place
// set and present in the request is used, in the order header, query,
// cookie.
type JWTSource struct {
	// Header is the header carrying the token. For Authorization the
	// value is "Bearer <token>" (scheme case-insensitive); for any other
	// header the whole value is the token. Default "Authorization" when
	// Query and Cookie are empty too, else "": not read.
	Header string `json:"header" yaml:"header"`
	// Query is the query argument carrying the token, such as
	// "access_token". Default "": not read.
	Query string `json:"query" yaml:"query"`
	// Cookie is the cookie carrying the token. Default "": not read.
	Cookie string `json:"cookie" yaml:"cookie"`
}

// JWT defaults.
const (
	DefaultJWTLeeway          = Duration(30 * time.Second)
	DefaultJWTMaxTokenSize    = Size(8 << 10)
	DefaultJWTConsumerClaim   = "sub"
	DefaultJWTHeader          = "Authorization"
	DefaultJWTCacheSize       = 10000
	DefaultJWKSMinInterval    = Duration(time.Second)
	DefaultJWKSDefaultTTL     = Duration(5 * time.Minute)
	DefaultJWKSMinTTL         = Duration(30 * time.Second)
	DefaultJWKSMaxTTL         = Duration(24 * time.Hour)
	jwtMethodPrefix           = "jwt:"
	maxJWTLeeway              = Duration(time.Hour)
	jwtHMACSecretMinBytesBase = 32
)

// setJWTDefaults fills the jwt issuers' defaults.
func (c *Config) setJWTDefaults() {
	for _, j := range c.JWT {
		if j == nil {
			continue
		}
		if j.Leeway == nil {
			l := DefaultJWTLeeway
			j.Leeway = &l
		}
		if j.RequireExp == nil {
			t := true
			j.RequireExp = &t
		}
		setZero(&j.MaxTokenSize, DefaultJWTMaxTokenSize)
		setZero(&j.ConsumerClaim, DefaultJWTConsumerClaim)
		setZero(&j.CacheSize, DefaultJWTCacheSize)
		if j.From == (JWTSource{}) {
			j.From.Header = DefaultJWTHeader
		}
		if j.JWKSURL != "" {
			r := &j.JWKSRefresh
			setZero(&r.MinInterval, DefaultJWKSMinInterval)
			setZero(&r.DefaultTTL, DefaultJWKSDefaultTTL)
			setZero(&r.MinTTL, DefaultJWKSMinTTL)
			setZero(&r.MaxTTL, DefaultJWKSMaxTTL)
		}
	}
}

// validateJWTConfig checks the jwt issuers. It reads the public key files
// (fastgate -check reports a missing or bad one) but fetches nothing.
func validateJWTConfig(errs *Errors, c *Config) {
	names := make(map[string]int, len(c.JWT))
	for i, j := range c.JWT {
		p := pathIndex("jwt", i)
		if j == nil {
			errs.add(p, `is empty; give it a name, algorithms and keys, such as {name: corp, algorithms: [RS256], jwks_url: "https://idp.example.com/jwks.json"}`)
			continue
		}
		if first, dup := names[j.Name]; dup && j.Name != "" {
			errs.add(p+".name", fmt.Sprintf("%q is already the name of jwt[%d]; issuer names must be unique", j.Name, first))
		} else {
			names[j.Name] = i
		}
		validateJWTIssuer(errs, p, j)
	}
}

func validateJWTIssuer(errs *Errors, p string, j *JWTIssuer) {
	if !validName(j.Name) {
		errs.add(p+".name", fmt.Sprintf("%q must be set and may only use %s; routes refer to it as %q", j.Name, nameCharset, jwtMethodPrefix+"NAME"))
	}
	for i, a := range j.Audience {
		if a == "" {
			errs.add(pathIndex(p+".audience", i), "is empty; give the audience tokens carry in aud, or remove it")
		}
	}
	hmac, ok := validateJWTAlgorithms(errs, p+".algorithms", j.Algorithms)
	if !ok {
		// The key checks need to know the algorithm family.
		validateJWTKeys(errs, p, j, nil, false)
	} else {
		validateJWTKeys(errs, p, j, j.Algorithms, hmac)
	}
	if j.Leeway != nil && *j.Leeway > maxJWTLeeway {
		errs.add(p+".leeway", fmt.Sprintf("%s is more clock skew than any clock has; want at most %s, usually 30s", *j.Leeway, maxJWTLeeway))
	}
	positiveSize(errs, p+".max_token_size", j.MaxTokenSize)
	if j.ConsumerClaim == "" {
		errs.add(p+".consumer_claim", `must be set, such as "sub"`)
	}
	if j.CacheSize < 0 {
		errs.add(p+".cache_size", fmt.Sprintf("must be >= 0 (0 means %d), got %d", DefaultJWTCacheSize, j.CacheSize))
	}
	validateJWTSource(errs, p+".from", &j.From)
	if j.JWKSURL != "" {
		validateJWKSRefresh(errs, p+".jwks_refresh", &j.JWKSRefresh)
	} else if j.JWKSRefresh != (JWKSRefresh{}) {
		errs.add(p+".jwks_refresh", "applies to jwks_url only; remove it or set jwks_url")
	}
}

// validateJWTAlgorithms checks the pinned algorithms and returns whether
// they are HMAC ones; ok is false when they can't be told.
func validateJWTAlgorithms(errs *Errors, p string, algs []string) (hmac, ok bool) {
	if len(algs) == 0 {
		errs.add(p, "must list the algorithms tokens are signed with, such as [RS256]; known: "+strings.Join(jwk.Algorithms, " "))
		return false, false
	}
	ok = true
	nHMAC := 0
	for i, a := range algs {
		ap := pathIndex(p, i)
		switch {
		case strings.EqualFold(a, "none"):
			errs.add(ap, `"none" accepts unsigned tokens and is never allowed; use one of `+strings.Join(jwk.Algorithms, " "))
			ok = false
		case !jwk.Known(a):
			errs.add(ap, fmt.Sprintf("unknown algorithm %q; known: %s%s", a, strings.Join(jwk.Algorithms, " "), didYouMean(a, jwk.Algorithms)))
			ok = false
		case slices.Index(algs, a) < i:
			errs.add(ap, fmt.Sprintf("%q is listed twice; keep one", a))
		}
		if jwk.HMAC(a) {
			nHMAC++
		}
	}
	if nHMAC > 0 && nHMAC < len(algs) {
		errs.add(p, "mixes HMAC (HS*) and public-key algorithms; an issuer uses one family, so a public key can never be taken for an HMAC secret: declare two issuers")
		return false, false
	}
	return nHMAC > 0, ok
}

// validateJWTKeys checks that the issuer has keys for its algorithms and
// that each key source parses. algs is nil when the algorithms are bad.
func validateJWTKeys(errs *Errors, p string, j *JWTIssuer, algs []string, hmac bool) {
	pubSources := len(j.PublicKeys) > 0 || j.JWKS != "" || j.JWKSURL != ""
	if algs != nil {
		switch {
		case hmac && j.Secret == "":
			errs.add(p+".secret", fmt.Sprintf(`must be set for %s; put it in the environment: secret: "${JWT_SECRET}"`, strings.Join(algs, ", ")))
		case hmac && pubSources:
			errs.add(p, "HMAC algorithms verify with secret only; remove public_keys, jwks and jwks_url (or pin public-key algorithms)")
		case !hmac && j.Secret != "":
			errs.add(p+".secret", fmt.Sprintf("applies to HS* algorithms only, not %s; remove it (keys come from public_keys, jwks or jwks_url)", strings.Join(algs, ", ")))
		case !hmac && !pubSources:
			errs.add(p, fmt.Sprintf("has no key for %s; set public_keys, jwks or jwks_url", strings.Join(algs, ", ")))
		}
		if hmac && j.Secret != "" {
			if need := hmacMinBytes(algs); len(j.Secret) < need {
				errs.add(p+".secret", fmt.Sprintf("is %d bytes; %s needs at least %d (RFC 7518 §3.2), such as the output of `openssl rand -base64 48`", len(j.Secret), strings.Join(algs, ", "), need))
			}
		}
	}
	kids := make(map[string]int)
	for i, k := range j.PublicKeys {
		kp := pathIndex(p+".public_keys", i)
		if k.Kid != "" {
			if first, dup := kids[k.Kid]; dup {
				errs.add(kp+".kid", fmt.Sprintf("%q is also the kid of public_keys[%d]; kids must be unique", k.Kid, first))
			}
			kids[k.Kid] = i
		}
		if k.File == "" {
			errs.add(kp+".file", "is empty; give the PEM file of the public key or certificate")
			continue
		}
		data, err := os.ReadFile(k.File)
		if err != nil {
			errs.add(kp+".file", err.Error())
			continue
		}
		pub, err := jwk.ParsePEM(data)
		if err != nil {
			errs.add(kp+".file", k.File+": "+err.Error())
			continue
		}
		if algs != nil && !hmac && !fitsAny(algs, pub) {
			errs.add(kp+".file", fmt.Sprintf("%s: an %s key verifies none of %s", k.File, jwk.Describe(pub), strings.Join(algs, ", ")))
		}
	}
	if j.JWKS != "" {
		keys, skipped, err := jwk.ParseSet([]byte(j.JWKS))
		if err != nil {
			errs.add(p+".jwks", err.Error())
		}
		for _, e := range skipped {
			errs.add(p+".jwks", e.Error())
		}
		for _, k := range keys {
			if algs != nil && !hmac && !fitsAny(algs, k.Public) {
				errs.add(p+".jwks", fmt.Sprintf("kid %q: an %s key verifies none of %s", k.ID, jwk.Describe(k.Public), strings.Join(algs, ", ")))
			}
		}
	}
	if j.JWKSURL != "" {
		u, err := url.Parse(j.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.add(p+".jwks_url", fmt.Sprintf(`%q is not an http(s) URL; write one such as "https://idp.example.com/.well-known/jwks.json"`, j.JWKSURL))
		}
	}
}

// hmacMinBytes is the shortest secret the strongest listed HS algorithm
// takes: its hash size.
func hmacMinBytes(algs []string) int {
	n := jwtHMACSecretMinBytesBase
	for _, a := range algs {
		switch a {
		case "HS384":
			n = max(n, 48)
		case "HS512":
			n = max(n, 64)
		}
	}
	return n
}

func fitsAny(algs []string, pub any) bool {
	for _, a := range algs {
		if jwk.Fits(a, pub) {
			return true
		}
	}
	return false
}

func validateJWKSRefresh(errs *Errors, p string, r *JWKSRefresh) {
	positiveDuration(errs, p+".min_interval", r.MinInterval)
	positiveDuration(errs, p+".default_ttl", r.DefaultTTL)
	positiveDuration(errs, p+".min_ttl", r.MinTTL)
	positiveDuration(errs, p+".max_ttl", r.MaxTTL)
	if r.MinTTL > r.MaxTTL {
		errs.add(p+".min_ttl", fmt.Sprintf("%s is above max_ttl %s; lower it", r.MinTTL, r.MaxTTL))
	}
	if r.DefaultTTL < r.MinTTL || r.DefaultTTL > r.MaxTTL {
		errs.add(p+".default_ttl", fmt.Sprintf("%s is outside [min_ttl %s, max_ttl %s]; set it in between", r.DefaultTTL, r.MinTTL, r.MaxTTL))
	}
}

func validateJWTSource(errs *Errors, p string, s *JWTSource) {
	if s.Header != "" && !validToken(s.Header) {
		errs.add(p+".header", fmt.Sprintf("%q is not a header name", s.Header))
	}
	if s.Cookie != "" && !validToken(s.Cookie) {
		errs.add(p+".cookie", fmt.Sprintf("%q is not a cookie name", s.Cookie))
	}
	if s.Query != "" && strings.ContainsAny(s.Query, "&=#? ") {
		errs.add(p+".query", fmt.Sprintf("%q is not a query argument name", s.Query))
	}
}
