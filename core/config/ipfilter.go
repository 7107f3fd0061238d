package config

// IPRules allow or deny clients by IP (the client IP past trusted
// proxies).
type IPRules struct {
	// Allow lists IPs or CIDRs; when not empty, only they are admitted.
	Allow []string `json:"allow" yaml:"allow"`
	// Deny lists IPs or CIDRs refused with 403; deny wins over allow.
	Deny []string `json:"deny" yaml:"deny"`
}

// validateIPConfig checks the top-level and routes' ip rules.
func validateIPConfig(errs *Errors, c *Config) {}
