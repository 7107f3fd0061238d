package config

// CacheStore is the gateway's response cache store, shared by the routes
// with a cache.
type CacheStore struct {
	// MaxSize is the store's byte budget. Default 64MiB.
	MaxSize Size `json:"max_size" yaml:"max_size"`
}

// Cache is a route's response cache.
type Cache struct {
	// TTL overrides the upstream's freshness lifetime. Default 0: the
	// upstream's Cache-Control/Expires decide.
	TTL Duration `json:"ttl" yaml:"ttl"`
}

// setCacheDefaults fills the cache store's and routes' cache defaults.
func (c *Config) setCacheDefaults() {}

// validateCacheConfig checks the cache store and routes' caches.
func validateCacheConfig(errs *Errors, c *Config) {}
