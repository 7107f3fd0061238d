package config

// HeaderTransforms change a route's request headers on the way upstream
// and its response headers on the way back.
type HeaderTransforms struct {
	Request  HeaderOps `json:"request" yaml:"request"`
	Response HeaderOps `json:"response" yaml:"response"`
}

// HeaderOps are applied in the order remove, rename, set, add.
type HeaderOps struct {
	// Remove lists header names, or prefixes ending in '*' ("X-Gw-*").
	Remove []string `json:"remove" yaml:"remove"`
	// Rename maps a header name to its new name.
	Rename map[string]string `json:"rename" yaml:"rename"`
	// Set sets headers, replacing any value.
	Set map[string]string `json:"set" yaml:"set"`
	// Add adds a header value beside any existing ones.
	Add map[string]string `json:"add" yaml:"add"`
}

// SecurityHeaders are response headers the gateway sets on every routed
// response.
type SecurityHeaders struct {
	// HSTS is the Strict-Transport-Security value, sent on TLS only.
	HSTS string `json:"hsts" yaml:"hsts"`
}

// setHeadersDefaults fills security_headers and routes' headers defaults.
func (c *Config) setHeadersDefaults() {}

// validateHeadersConfig checks security_headers and routes' headers.
func validateHeadersConfig(errs *Errors, c *Config) {}
