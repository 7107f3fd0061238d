package config

// CORS is a route's cross-origin resource sharing policy (Fetch standard).
type CORS struct {
	// AllowOrigins are exact origins ("https://app.example.com"),
	// wildcard subdomains ("https://*.example.com") or "*".
	AllowOrigins []string `json:"allow_origins" yaml:"allow_origins"`
}
