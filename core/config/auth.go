package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Consumer is a known client of the gateway: a name, its groups and its
// credentials. Consumers are matched by API key or basic-auth user name;
// a JWT whose subject equals a consumer's name is that consumer.
type Consumer struct {
	// Name identifies the consumer in logs, metrics, the consumer header
	// sent upstream and rate_limit key: consumer. Letters, digits, '_',
	// '.', '-' and '@'. Required, unique.
	Name string `json:"name" yaml:"name"`

	// Groups the consumer belongs to, for route auth.groups, and sent
	// upstream comma-joined in the route's groups_header. Each is
	// non-empty, without ',', spaces or control characters. Default none.
	Groups []string `json:"groups" yaml:"groups"`

	// APIKeys are the consumer's API keys: the key itself (usually
	// "${ENV}"), at least MinAPIKeyLen bytes, or its SHA-256 as
	// "sha256:<64 hex digits>" (`printf %s "$KEY" | sha256sum`). Keys are
	// replaced by their SHA-256 right after loading, so neither memory nor
	// GET /config holds a key in clear. Unique across consumers. Default
	// none.
	APIKeys []string `json:"api_keys" yaml:"api_keys"`

	// BasicAuth is the consumer's basic-auth credential. Absent: none.
	BasicAuth *BasicAuth `json:"basic_auth" yaml:"basic_auth"`

	// RateLimit overrides, for this consumer, the rate of every route
	// limit with key: consumer (one mapping: rate, per, burst). Absent:
	// the route's limits.
	RateLimit *ConsumerRateLimit `json:"rate_limit" yaml:"rate_limit"`
}

// BasicAuth is a user name and a bcrypt password hash.
type BasicAuth struct {
	// Username is the basic-auth user name: not empty, without ':' or
	// control characters. Required, unique across consumers.
	Username string `json:"username" yaml:"username"`
	// PasswordHash is a bcrypt hash ("$2a$", "$2b$" or "$2y$", cost 4 to
	// 31, 60 characters, such as `htpasswd -nbB user pass` prints after
	// the ':'). Required. Redacted from GET /config.
	PasswordHash string `json:"password_hash" yaml:"password_hash"`
}

// ConsumerRateLimit is a consumer's own rate for routes limiting by
// consumer.
type ConsumerRateLimit struct {
	// Rate requests per Per. Required, > 0.
	Rate int `json:"rate" yaml:"rate"`
	// Per is the period Rate is counted over. Default (and zero) 1s.
	Per Duration `json:"per" yaml:"per"`
	// Burst is the most requests admitted at once. Default (and zero)
	// Rate.
	Burst int `json:"burst" yaml:"burst"`
}

// APIKeySource says where requests carry API keys. A request's key is the
// header's, else the query argument's, else the bearer token's.
type APIKeySource struct {
	// Header carrying the key. Default "X-API-Key".
	Header string `json:"header" yaml:"header"`
	// Query argument carrying the key, such as "api_key". Default "": not
	// read. Keys in URLs end up in logs and browser histories; prefer the
	// header.
	Query string `json:"query" yaml:"query"`
	// Bearer also reads "Authorization: Bearer <key>". Default false.
	Bearer bool `json:"bearer" yaml:"bearer"`
}

// Auth is a route's authentication and authorization (README
// "Authentication"). A request without valid credentials gets 401 with
// one WWW-Authenticate challenge per method; an authenticated consumer
// outside Groups, or a token without Claims, gets 403.
type Auth struct {
	// AnyOf lists methods of which one must succeed, tried in order; the
	// first that succeeds names the consumer. Methods: "api_key",
	// "basic", "jwt:NAME" (NAME an issuer of the top-level jwt list).
	// At least one of AnyOf and AllOf is required.
	AnyOf []string `json:"any_of" yaml:"any_of"`
	// AllOf lists methods that must all succeed; the first names the
	// consumer, and two that name different consumers fail. With AnyOf
	// too, both must pass. Default none.
	AllOf []string `json:"all_of" yaml:"all_of"`
	// Groups: the consumer must be in one of them, else 403. A consumer's
	// groups are its configured groups, plus a JWT's groups for a token.
	// Default none: any authenticated consumer.
	Groups []string `json:"groups" yaml:"groups"`
	// Claims every JWT the request authenticated with must carry with
	// these values (a string claim equal to the value, or an array claim
	// containing it), else 403. Only with a jwt method. A request
	// authenticated without a JWT (api_key, basic) is not checked.
	// Default none.
	Claims map[string]string `json:"claims" yaml:"claims"`
	// Realm is the realm of the WWW-Authenticate challenges. Default
	// "fastgate"; no '"', '\' or control characters.
	Realm string `json:"realm" yaml:"realm"`
	// KeepCredentials sends the client's credentials (API key header or
	// query argument, Authorization, the JWT) upstream. Default false:
	// they are removed.
	KeepCredentials bool `json:"keep_credentials" yaml:"keep_credentials"`
	// ConsumerHeader is set on the upstream request to the consumer's
	// name; a client's own copy is removed. Default "X-Consumer".
	ConsumerHeader string `json:"consumer_header" yaml:"consumer_header"`
	// GroupsHeader is set on the upstream request to the consumer's
	// groups, comma-joined (empty when it has none); a client's own copy
	// is removed. Default "X-Consumer-Groups".
	GroupsHeader string `json:"groups_header" yaml:"groups_header"`
}

// Auth defaults and limits.
const (
	DefaultAPIKeyHeader   = "X-API-Key"
	DefaultAuthRealm      = "fastgate"
	DefaultConsumerHeader = "X-Consumer"
	DefaultGroupsHeader   = "X-Consumer-Groups"
	// MinAPIKeyLen is the shortest API key accepted in clear: 16 bytes,
	// 128 bits when random. Hashed keys ("sha256:...") are not checked.
	MinAPIKeyLen = 16
	// MaxAuthMethods caps the distinct methods of one route's auth.
	MaxAuthMethods = 16
	// APIKeyHashPrefix starts a hashed API key.
	APIKeyHashPrefix = "sha256:"
)

// Auth method names.
const (
	AuthAPIKey    = "api_key"
	AuthBasic     = "basic"
	AuthJWTPrefix = "jwt:"
)

// setAuthDefaults fills api_key, consumers and routes' auth defaults, and
// replaces API keys by their SHA-256. A key too short to accept is left
// as it is for validation to report (without its value).
func (c *Config) setAuthDefaults() {
	setZero(&c.APIKey.Header, DefaultAPIKeyHeader)
	for _, cs := range c.Consumers {
		if cs == nil {
			continue
		}
		for i, k := range cs.APIKeys {
			cs.APIKeys[i] = hashAPIKey(k)
		}
		if rl := cs.RateLimit; rl != nil {
			setZero(&rl.Per, DefaultRateLimitPer)
			setZero(&rl.Burst, rl.Rate)
		}
	}
	for _, r := range c.Routes {
		if r == nil || r.Auth == nil {
			continue
		}
		a := r.Auth
		setZero(&a.Realm, DefaultAuthRealm)
		setZero(&a.ConsumerHeader, DefaultConsumerHeader)
		setZero(&a.GroupsHeader, DefaultGroupsHeader)
	}
}

// hashAPIKey returns k as "sha256:<hex>": a clear key hashed, a hashed
// one with its hex lower-cased. A short clear key or a malformed hash is
// returned as it is.
func hashAPIKey(k string) string {
	if h, ok := strings.CutPrefix(k, APIKeyHashPrefix); ok {
		if isSHA256Hex(h) {
			return APIKeyHashPrefix + strings.ToLower(h)
		}
		return k
	}
	if len(k) < MinAPIKeyLen {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return APIKeyHashPrefix + hex.EncodeToString(sum[:])
}

func isSHA256Hex(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

// APIKeyDigest returns the SHA-256 of a defaulted API key
// ("sha256:<hex>"), false when k is not one.
func APIKeyDigest(k string) (d [sha256.Size]byte, ok bool) {
	h, found := strings.CutPrefix(k, APIKeyHashPrefix)
	if !found || len(h) != 2*sha256.Size {
		return d, false
	}
	_, err := hex.Decode(d[:], []byte(h))
	return d, err == nil
}

// validateAuthConfig checks consumers, api_key and every route's auth.
func validateAuthConfig(errs *Errors, c *Config) {
	validateConsumers(errs, c.Consumers)
	validateAPIKeySource(errs, "api_key", &c.APIKey)
	for i, r := range c.Routes {
		if r != nil && r.Auth != nil {
			validateAuth(errs, pathIndex("routes", i)+".auth", r.Auth, c)
		}
	}
}

func validateConsumers(errs *Errors, cs []*Consumer) {
	names := map[string]string{}
	keys := map[string]string{}
	users := map[string]string{}
	for i, c := range cs {
		p := pathIndex("consumers", i)
		if c == nil {
			errs.add(p, `is empty; give it a name and credentials, such as {name: billing, api_keys: ["${BILLING_KEY}"]}`)
			continue
		}
		validateConsumerName(errs, p+".name", c.Name, names)
		for j, g := range c.Groups {
			validateGroup(errs, pathIndex(p+".groups", j), g)
		}
		for j, k := range c.APIKeys {
			validateAPIKey(errs, pathIndex(p+".api_keys", j), k, keys)
		}
		if b := c.BasicAuth; b != nil {
			validateBasicAuth(errs, p+".basic_auth", b, users)
		}
		if rl := c.RateLimit; rl != nil {
			validateConsumerRateLimit(errs, p+".rate_limit", rl)
		}
	}
}

func validateConsumerName(errs *Errors, path, name string, seen map[string]string) {
	if !validConsumerName(name) {
		errs.add(path, fmt.Sprintf("%q may only use %s and '@', and must not be empty", name, nameCharset))
		return
	}
	if first, dup := seen[name]; dup {
		errs.add(path, fmt.Sprintf("%q is already the name of %s; consumer names are unique", name, first))
		return
	}
	seen[name] = strings.TrimSuffix(path, ".name")
}

func validConsumerName(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return r > 0x7f || !isIdentByte(byte(r)) && r != '.' && r != '-' && r != '@'
	})
}

// validateGroup checks a group name: it is sent comma-joined upstream.
func validateGroup(errs *Errors, path, g string) {
	if g == "" || strings.ContainsFunc(g, func(r rune) bool { return r == ',' || r <= ' ' || r == 0x7f }) {
		errs.add(path, fmt.Sprintf("group %q must not be empty nor contain ',', spaces or control characters", g))
	}
}

func validateAPIKey(errs *Errors, path, k string, seen map[string]string) {
	switch {
	case k == "":
		errs.add(path, `is empty; give the key, such as "${BILLING_API_KEY}", or its hash "sha256:<64 hex digits>" (an unset environment variable is empty)`)
		return
	case strings.HasPrefix(k, APIKeyHashPrefix) && !isSHA256Hex(k[len(APIKeyHashPrefix):]):
		errs.add(path, `starts with "sha256:" but is not followed by 64 hex digits; write the key itself, or the output of printf %s "$KEY" | sha256sum`)
		return
	case !strings.HasPrefix(k, APIKeyHashPrefix):
		// setAuthDefaults hashes every key long enough: this one is not,
		// and its value is not repeated here.
		errs.add(path, fmt.Sprintf("is %d bytes; an API key must have at least %d (use a random one: openssl rand -hex 24)", len(k), MinAPIKeyLen))
		return
	}
	if first, dup := seen[k]; dup {
		errs.add(path, "is the same key as "+first+"; every API key names one consumer")
		return
	}
	seen[k] = path
}

func validateBasicAuth(errs *Errors, path string, b *BasicAuth, seen map[string]string) {
	u := b.Username
	switch {
	case u == "" || strings.ContainsFunc(u, func(r rune) bool { return r == ':' || r < ' ' || r == 0x7f }):
		errs.add(path+".username", fmt.Sprintf("%q must not be empty nor contain ':' or control characters", u))
	case seen[u] != "":
		errs.add(path+".username", fmt.Sprintf("%q is already the user name of %s; user names are unique", u, seen[u]))
	default:
		seen[u] = path
	}
	if msg := checkBcrypt(b.PasswordHash); msg != "" {
		errs.add(path+".password_hash", msg+`; generate one with htpasswd -nbB USER PASSWORD (the part after ':') or any bcrypt tool`)
	}
}

// checkBcrypt describes what is wrong with a bcrypt hash, "" when nothing.
func checkBcrypt(h string) string {
	const bcryptLen = 60
	if h == "" {
		return "is empty"
	}
	if len(h) != bcryptLen || h[0] != '$' || h[1] != '2' || !strings.ContainsRune("aby", rune(h[2])) || h[3] != '$' || h[6] != '$' {
		return `is not a bcrypt hash ("$2b$10$" and 53 more characters)`
	}
	cost, err := strconv.Atoi(h[4:6])
	if err != nil || cost < 4 || cost > 31 {
		return fmt.Sprintf("has cost %q; bcrypt costs are 04 to 31", h[4:6])
	}
	for i := 7; i < len(h); i++ {
		if c := h[i]; !isIdentByte(c) && c != '.' && c != '/' || c == '_' {
			return "has a character outside bcrypt's base64 alphabet"
		}
	}
	return ""
}

func validateConsumerRateLimit(errs *Errors, path string, rl *ConsumerRateLimit) {
	if rl.Rate <= 0 {
		errs.add(path+".rate", fmt.Sprintf("must be > 0 requests per per, got %d", rl.Rate))
	}
	if rl.Per <= 0 {
		errs.add(path+".per", fmt.Sprintf("must be > 0, got %s", rl.Per))
	}
	if rl.Burst < 0 {
		errs.add(path+".burst", fmt.Sprintf("must be >= 0 (0: rate), got %d", rl.Burst))
	}
}

func validateAPIKeySource(errs *Errors, path string, s *APIKeySource) {
	if !validToken(s.Header) {
		errs.add(path+".header", fmt.Sprintf("%q is not a header name; write one such as %q", s.Header, DefaultAPIKeyHeader))
	}
	if s.Query != "" && strings.ContainsAny(s.Query, "&=#? \t") {
		errs.add(path+".query", fmt.Sprintf("%q is not a query argument name; write one such as \"api_key\"", s.Query))
	}
}

func validateAuth(errs *Errors, path string, a *Auth, c *Config) {
	if len(a.AnyOf) == 0 && len(a.AllOf) == 0 {
		errs.add(path, `lists no method; set any_of (one must succeed) or all_of (all must), such as any_of: [api_key]`)
	}
	hasJWT := false
	distinct := map[string]bool{}
	for _, l := range []struct {
		name    string
		methods []string
	}{{"any_of", a.AnyOf}, {"all_of", a.AllOf}} {
		for i, m := range l.methods {
			p := pathIndex(path+"."+l.name, i)
			if slices.Contains(l.methods[:i], m) {
				errs.add(p, fmt.Sprintf("%q is listed twice", m))
				continue
			}
			if validateAuthMethod(errs, p, m, c) && strings.HasPrefix(m, AuthJWTPrefix) {
				hasJWT = true
			}
			distinct[m] = true
		}
	}
	if len(distinct) > MaxAuthMethods {
		errs.add(path, fmt.Sprintf("lists %d distinct methods; at most %d", len(distinct), MaxAuthMethods))
	}
	for i, g := range a.Groups {
		validateGroup(errs, pathIndex(path+".groups", i), g)
	}
	if len(a.Claims) > 0 && !hasJWT {
		errs.add(path+".claims", `are checked on JWTs, but no jwt:NAME method is listed; add one to any_of or all_of, or remove claims`)
	}
	for name := range a.Claims {
		if name == "" {
			errs.add(path+".claims", "has an empty claim name")
		}
	}
	if strings.ContainsFunc(a.Realm, func(r rune) bool { return r == '"' || r == '\\' || r < ' ' || r == 0x7f }) {
		errs.add(path+".realm", fmt.Sprintf(`%q must not contain '"', '\' or control characters`, a.Realm))
	}
	validateAuthHeader(errs, path+".consumer_header", a.ConsumerHeader)
	validateAuthHeader(errs, path+".groups_header", a.GroupsHeader)
	if strings.EqualFold(a.ConsumerHeader, a.GroupsHeader) {
		errs.add(path+".groups_header", fmt.Sprintf("%q is also consumer_header; give them different names", a.GroupsHeader))
	}
}

func validateAuthHeader(errs *Errors, path, h string) {
	switch {
	case !validToken(h):
		errs.add(path, fmt.Sprintf("%q is not a header name", h))
	case strings.EqualFold(h, "Authorization") || strings.EqualFold(h, "Host") || strings.EqualFold(h, "Cookie"):
		errs.add(path, fmt.Sprintf("%q is a header the request needs; choose another name, such as %q", h, DefaultConsumerHeader))
	}
}

// validateAuthMethod checks one method and reports whether it is valid.
func validateAuthMethod(errs *Errors, path, m string, c *Config) bool {
	switch {
	case m == AuthAPIKey:
		if !slices.ContainsFunc(c.Consumers, func(cs *Consumer) bool { return cs != nil && len(cs.APIKeys) > 0 }) {
			errs.add(path, `"api_key" but no consumer has api_keys; add one under consumers`)
			return false
		}
	case m == AuthBasic:
		if !slices.ContainsFunc(c.Consumers, func(cs *Consumer) bool { return cs != nil && cs.BasicAuth != nil }) {
			errs.add(path, `"basic" but no consumer has basic_auth; add one under consumers`)
			return false
		}
	case strings.HasPrefix(m, AuthJWTPrefix):
		name := m[len(AuthJWTPrefix):]
		if JWTIssuerByName(c, name) == nil {
			var names []string
			for _, j := range c.JWT {
				if j != nil {
					names = append(names, AuthJWTPrefix+j.Name)
				}
			}
			errs.add(path, fmt.Sprintf("%q names no issuer of the top-level jwt list%s", m, didYouMean(m, names)))
			return false
		}
	default:
		cands := []string{AuthAPIKey, AuthBasic}
		for _, j := range c.JWT {
			if j != nil {
				cands = append(cands, AuthJWTPrefix+j.Name)
			}
		}
		errs.add(path, fmt.Sprintf(`unknown method %q; want "api_key", "basic" or "jwt:NAME"%s`, m, didYouMean(m, cands)))
		return false
	}
	return true
}

// JWTIssuerByName returns the top-level jwt issuer name, or nil.
func JWTIssuerByName(c *Config, name string) *JWTIssuer {
	for _, j := range c.JWT {
		if j != nil && j.Name == name {
			return j
		}
	}
	return nil
}
