package config

// JWTIssuer is one issuer of JSON Web Tokens the gateway verifies.
// README "Authentication" documents every field.
type JWTIssuer struct {
	Name string `json:"name" yaml:"name"`
}

// setJWTDefaults fills the jwt issuers' defaults.
func (c *Config) setJWTDefaults() {}

// validateJWTConfig checks the jwt issuers.
func validateJWTConfig(errs *Errors, c *Config) {}
