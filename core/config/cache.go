package config

import (
	"fmt"
	"slices"
	"strings"
)

// CacheStore is the gateway's response cache store, shared by the routes
// with a cache.
type CacheStore struct {
	// MaxSize is the store's byte budget: keys, stored headers and bodies
	// of every route's cached responses. The store (fastcache) is 512
	// buckets of 64KiB chunks allocated as they fill, so budgets below
	// 32MiB act as 32MiB; when full, the oldest chunk of a bucket is
	// dropped whole. Default 64MiB; 0 means the default.
	MaxSize Size `json:"max_size" yaml:"max_size"`
}

// Cache is a route's response cache (RFC 9111, as a shared cache). Hits
// are answered before the request transforms and the terminal run: after
// IP rules, CORS, auth and rate limits.
type Cache struct {
	// TTL overrides the upstream's freshness lifetime: a response is fresh
	// for TTL after it was stored, whatever its Cache-Control max-age,
	// s-maxage or Expires say. Default 0: the upstream's freshness
	// (s-maxage, else max-age, else Expires minus Date); a response without
	// any is not stored.
	TTL Duration `json:"ttl" yaml:"ttl"`

	// StaleWhileRevalidate is how long after it went stale an entry is
	// still served at once (X-Cache: STALE) while one background request
	// refreshes it (RFC 5861). A response's own
	// Cache-Control: stale-while-revalidate=N wins when longer. Default 0:
	// only the response's.
	StaleWhileRevalidate Duration `json:"stale_while_revalidate" yaml:"stale_while_revalidate"`

	// StaleIfError is how long after it went stale an entry is served
	// instead of an upstream error (a 500, 502, 503 or 504, the gateway's
	// own included) (RFC 5861). A response's own
	// Cache-Control: stale-if-error=N wins when longer. Default 0: only the
	// response's.
	StaleIfError Duration `json:"stale_if_error" yaml:"stale_if_error"`

	// Methods are the cached methods: GET, and HEAD (answered from the GET
	// entry; a HEAD miss goes upstream and is not stored). Other methods
	// pass through (X-Cache: BYPASS). Default [GET, HEAD].
	Methods []string `json:"methods" yaml:"methods"`

	// Statuses are the response status codes stored. Default 200, 203,
	// 204, 300, 301, 404, 410 (RFC 9110's heuristically cacheable codes
	// without 206, 405, 414 and 501).
	Statuses []int `json:"statuses" yaml:"statuses"`

	// Query says how the query string enters the key: "keep" (as sent),
	// "sort" (its args sorted, so ?b=2&a=1 and ?a=1&b=2 share an entry)
	// or "ignore" (left out: every query shares the path's entry). Default
	// "keep".
	Query string `json:"query" yaml:"query"`

	// Vary are request headers whose values are always part of the key, as
	// if every response named them in Vary (Accept-Language, X-Tenant).
	// The response's own Vary is honoured as well. Default none.
	Vary []string `json:"vary" yaml:"vary"`

	// PerConsumer caches per consumer: the consumer's name (set by the
	// route's auth) is part of the key. Default false: requests with a
	// consumer, an Authorization or a Cookie header bypass the cache
	// (X-Cache: BYPASS); with true, requests with a consumer are cached
	// per consumer, and those with Authorization or Cookie but no consumer
	// still bypass.
	PerConsumer bool `json:"per_consumer" yaml:"per_consumer"`

	// MaxObjectSize is the largest response body stored. Larger bodies,
	// and bodies streamed through (chunked, or longer than the upstream's
	// pool.max_buffered_body), are passed on unstored. Default 1MiB; 0
	// means the default.
	MaxObjectSize Size `json:"max_object_size" yaml:"max_object_size"`

	// LockTimeout bounds how long a request that misses waits for the
	// request already fetching the same key (request collapsing) before
	// it goes upstream itself. Default 5s; 0 means the default.
	LockTimeout Duration `json:"lock_timeout" yaml:"lock_timeout"`

	// KeyHeader sends the entry's key in X-Cache-Key on every cached
	// route answer, the text POST /cache/purge takes. Default false.
	KeyHeader bool `json:"key_header" yaml:"key_header"`
}

// Cache query modes.
const (
	CacheQueryKeep   = "keep"
	CacheQuerySort   = "sort"
	CacheQueryIgnore = "ignore"
)

// Cache defaults.
const (
	DefaultCacheMaxSize       Size     = 64 << 20
	DefaultCacheMaxObjectSize Size     = 1 << 20
	DefaultCacheLockTimeout   Duration = Duration(5e9)
)

// CacheDefaultMethods and CacheDefaultStatuses are a route cache's
// methods and statuses when it sets none.
var (
	CacheDefaultMethods  = []string{"GET", "HEAD"}
	CacheDefaultStatuses = []int{200, 203, 204, 300, 301, 404, 410}
)

// setCacheDefaults fills the cache store's and routes' cache defaults.
func (c *Config) setCacheDefaults() {
	setZero(&c.Cache.MaxSize, DefaultCacheMaxSize)
	for _, r := range c.Routes {
		if r == nil || r.Cache == nil {
			continue
		}
		k := r.Cache
		if k.Methods == nil {
			k.Methods = slices.Clone(CacheDefaultMethods)
		}
		if k.Statuses == nil {
			k.Statuses = slices.Clone(CacheDefaultStatuses)
		}
		setZero(&k.Query, CacheQueryKeep)
		setZero(&k.MaxObjectSize, DefaultCacheMaxObjectSize)
		setZero(&k.LockTimeout, DefaultCacheLockTimeout)
	}
}

// validateCacheConfig checks the cache store and routes' caches.
func validateCacheConfig(errs *Errors, c *Config) {
	if c.Cache.MaxSize < 0 {
		errs.add("cache.max_size", fmt.Sprintf("must be > 0, such as 64MiB (0 means %s), got %s", DefaultCacheMaxSize, c.Cache.MaxSize))
	}
	for i, r := range c.Routes {
		if r != nil && r.Cache != nil {
			validateCache(errs, pathIndex("routes", i)+".cache", r.Cache, c.Cache.MaxSize)
		}
	}
}

func validateCache(errs *Errors, path string, k *Cache, storeSize Size) {
	nonNegativeDuration(errs, path+".ttl", k.TTL)
	nonNegativeDuration(errs, path+".stale_while_revalidate", k.StaleWhileRevalidate)
	nonNegativeDuration(errs, path+".stale_if_error", k.StaleIfError)
	if k.LockTimeout < 0 {
		errs.add(path+".lock_timeout", fmt.Sprintf("must be > 0, such as 5s (0 means %s), got %s", DefaultCacheLockTimeout, k.LockTimeout))
	}
	switch {
	case k.MaxObjectSize < 0:
		errs.add(path+".max_object_size", fmt.Sprintf("must be > 0, such as 1MiB (0 means %s), got %s", DefaultCacheMaxObjectSize, k.MaxObjectSize))
	case storeSize > 0 && k.MaxObjectSize > storeSize/4:
		errs.add(path+".max_object_size", fmt.Sprintf("%s is over a quarter of cache.max_size (%s): a few such objects would evict everything; raise cache.max_size or lower max_object_size", k.MaxObjectSize, storeSize))
	}
	switch k.Query {
	case CacheQueryKeep, CacheQuerySort, CacheQueryIgnore:
	default:
		errs.add(path+".query", fmt.Sprintf(`%q is not a query mode: write "keep" (as sent), "sort" (args sorted) or "ignore" (no query in the key)`, k.Query))
	}
	if len(k.Methods) == 0 {
		errs.add(path+".methods", "must list GET, HEAD or both; to cache nothing remove the route's cache")
	}
	for i, m := range k.Methods {
		p := pathIndex(path+".methods", i)
		switch {
		case m != "GET" && m != "HEAD" && (strings.EqualFold(m, "GET") || strings.EqualFold(m, "HEAD")):
			errs.add(p, fmt.Sprintf("%q: methods are case-sensitive; write %q", m, strings.ToUpper(m)))
		case m != "GET" && m != "HEAD":
			errs.add(p, fmt.Sprintf("%q is not cacheable here: only GET and HEAD (answered from the GET entry) are", m))
		case slices.Contains(k.Methods[:i], m):
			errs.add(p, fmt.Sprintf("%q is listed twice", m))
		}
	}
	for i, s := range k.Statuses {
		p := pathIndex(path+".statuses", i)
		switch {
		case s < 200 || s > 599:
			errs.add(p, fmt.Sprintf("%d is not a final status code: write one of 200-599, such as 200 or 404", s))
		case s == 206:
			errs.add(p, "206 (partial content) is not stored: ranges are passed through; remove it")
		case slices.Contains(k.Statuses[:i], s):
			errs.add(p, fmt.Sprintf("%d is listed twice", s))
		}
	}
	for i, h := range k.Vary {
		p := pathIndex(path+".vary", i)
		switch {
		case !validToken(h) || h == "*":
			errs.add(p, fmt.Sprintf("%q is not a header name: use letters, digits and !#$%%&'*+-.^_`|~", h))
		case slices.ContainsFunc(k.Vary[:i], func(v string) bool { return strings.EqualFold(v, h) }):
			errs.add(p, fmt.Sprintf("%q is listed twice", h))
		}
	}
}
