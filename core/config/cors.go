package config

// CORS is a route's cross-origin resource sharing policy (Fetch standard).
type CORS struct {
	// AllowOrigins are exact origins ("https://app.example.com"),
	// wildcard subdomains ("https://*.example.com") or "*".
	AllowOrigins []string `json:"allow_origins" yaml:"allow_origins"`
}

// setCORSDefaults fills routes' cors defaults.
func (c *Config) setCORSDefaults() {}

// validateCORSConfig checks routes' cors.
func validateCORSConfig(errs *Errors, c *Config) {}
