// Package config is the gateway's configuration as pure data: Load (YAML or
// JSON) -> SetDefaults -> Validate. It never starts anything and never
// imports the engine; core compiles a validated Config into its runtime
// snapshot.
//
// Every field documents its meaning, unit, default and what zero means.
// Durations are strings such as "250ms" or "2m"; sizes are integers (bytes)
// or strings such as "512", "64KiB", "4MiB" (KB/MB/GB are 1000-based,
// KiB/MiB/GiB 1024-based).
package config

// Config is the whole gateway configuration, one file.
type Config struct {
	// Listen is the address the gateway listens on, "host:port".
	// Default ":8080".
	Listen string `json:"listen" yaml:"listen"`

	// Server tunes the downstream fasthttp listener.
	Server Server `json:"server" yaml:"server"`

	// Admin is the operations listener: health, readiness, metrics,
	// config, reload and upstream state.
	Admin Admin `json:"admin" yaml:"admin"`

	// AccessLog writes one JSON line per request, asynchronously.
	AccessLog AccessLog `json:"access_log" yaml:"access_log"`

	// TLS, when it lists certificates, makes the listener terminate TLS.
	TLS TLS `json:"tls" yaml:"tls"`

	// Upstreams are the named groups of targets that routes send traffic to.
	Upstreams map[string]*Upstream `json:"upstreams" yaml:"upstreams"`

	// Routes are matched as described in the README ("Routing"): host first,
	// then path template, then methods, headers and query.
	Routes []*Route `json:"routes" yaml:"routes"`

	// RateLimit is the default rate limit (one mapping or a list) of every
	// route that sets none; each route counts its own buckets. A route opts
	// out with rate_limit: off. Default none.
	RateLimit RateLimits `json:"rate_limit" yaml:"rate_limit"`

	// Redis is the server that rate limits with scope: global share.
	Redis Redis `json:"redis" yaml:"redis"`

	// Consumers are the gateway's known clients and their credentials
	// (API keys, basic auth), for routes' auth. Default none.
	Consumers []*Consumer `json:"consumers" yaml:"consumers"`

	// APIKey says where requests carry API keys. Default: the X-API-Key
	// header.
	APIKey APIKeySource `json:"api_key" yaml:"api_key"`

	// JWT lists the token issuers routes may accept (auth: jwt:NAME).
	// Default none.
	JWT []*JWTIssuer `json:"jwt" yaml:"jwt"`

	// IP allows or denies clients by IP on every route, before the
	// route's own ip rules. Default: every client admitted.
	IP IPRules `json:"ip" yaml:"ip"`

	// Cache is the response cache store that routes with cache share.
	Cache CacheStore `json:"cache" yaml:"cache"`

	// SecurityHeaders are set on every routed response. Default:
	// X-Content-Type-Options: nosniff, and HSTS on TLS listeners.
	SecurityHeaders SecurityHeaders `json:"security_headers" yaml:"security_headers"`
}

// Server tunes the downstream listener. Every zero field takes the value of
// the matching command-line flag (see Defaults), which itself has a built-in
// default.
type Server struct {
	// ReadTimeout bounds reading one whole request (headers and body),
	// and the wait for the first request on a new connection.
	// Default 30s. Zero takes the flag's value.
	ReadTimeout Duration `json:"read_timeout" yaml:"read_timeout"`

	// WriteTimeout bounds writing one whole response to the client.
	// Default 30s. Zero takes the flag's value.
	WriteTimeout Duration `json:"write_timeout" yaml:"write_timeout"`

	// IdleTimeout closes a keep-alive connection that has carried no
	// request for this long. Default 90s. Zero takes the flag's value.
	IdleTimeout Duration `json:"idle_timeout" yaml:"idle_timeout"`

	// MaxRequestBody is the largest request body accepted; larger ones get
	// 413 and never reach an upstream. Default 4MiB.
	MaxRequestBody Size `json:"max_request_body" yaml:"max_request_body"`

	// MaxHeaderBytes caps the request line plus headers; larger get 431.
	// It is also the per-connection read buffer. Default 8KiB.
	MaxHeaderBytes Size `json:"max_header_bytes" yaml:"max_header_bytes"`

	// Concurrency is the maximum number of connections served at once.
	// Default 262144.
	Concurrency int `json:"concurrency" yaml:"concurrency"`

	// MaxConnsPerIP limits concurrent connections from one client IP.
	// Default 0: unlimited.
	MaxConnsPerIP int `json:"max_conns_per_ip" yaml:"max_conns_per_ip"`

	// MaxRequestsPerConn closes a keep-alive connection after this many
	// requests. Default 0: unlimited.
	MaxRequestsPerConn int `json:"max_requests_per_conn" yaml:"max_requests_per_conn"`

	// DrainTimeout is how long in-flight requests may take to finish on
	// SIGTERM/SIGINT before the process exits anyway. Default 30s
	// (-drain-timeout).
	DrainTimeout Duration `json:"drain_timeout" yaml:"drain_timeout"`

	// TrustedProxies are the IPs or CIDRs (e.g. "10.0.0.0/8") of proxies in
	// front of the gateway. Only when the peer is one of them are the
	// client's X-Forwarded-* headers believed, and the client IP is then the
	// rightmost X-Forwarded-For entry that is not trusted. Default empty:
	// the client IP is the peer address and incoming X-Forwarded-* are
	// replaced.
	TrustedProxies []string `json:"trusted_proxies" yaml:"trusted_proxies"`

	// StripRequestHeaders are removed from every client request before
	// routing, so that no client can assert what only the gateway may:
	// names, or prefixes ending in '*'. Default DefaultStripRequestHeaders
	// (README "Headers the gateway strips"); an explicit list replaces it,
	// and [] strips nothing. The consumer headers auth sets are always
	// stripped.
	StripRequestHeaders []string `json:"strip_request_headers" yaml:"strip_request_headers"`

	// HTTP2 serves HTTP/2 on a TLS listener to clients that ask for it by
	// ALPN ("h2"), through the same routes and filters as HTTP/1.1.
	// Default false: HTTP/1.1 only.
	HTTP2 bool `json:"http2" yaml:"http2"`

	// H2C serves cleartext HTTP/2 with prior knowledge (a client that
	// starts with the HTTP/2 preface) on a plain listener, beside
	// HTTP/1.1. Telling them apart reads the first bytes of every
	// connection, which costs HTTP/1.1 connections fasthttp's writev path
	// and the client watchdog. Default false.
	H2C bool `json:"h2c" yaml:"h2c"`

	// UnderscoreHeaders is what happens to request headers whose names
	// contain '_' (X_Forwarded_For), which many frameworks (CGI, WSGI,
	// PHP, Rails) fold onto the '-' name the gateway controls: "drop"
	// (removed, as nginx does by default), "reject" (400) or "allow".
	// Default "drop".
	UnderscoreHeaders string `json:"underscore_headers" yaml:"underscore_headers"`
}

// DefaultStripRequestHeaders are the request headers removed from every
// client request by default (server.strip_request_headers):
//   - client-IP assertions the gateway makes itself (it sets X-Real-IP and
//     X-Forwarded-For from the peer and trusted proxies);
//   - identity headers that authentication sets (X-Consumer*) or that
//     auth proxies assert (X-Authenticated-*, X-Forwarded-User,
//     X-Remote-User);
//   - method overrides, which turn a GET the routes allowed into a DELETE
//     behind the gateway;
//   - URL overrides, which some frameworks route by instead of the path;
//   - Proxy, which CGI turns into HTTP_PROXY (httpoxy, CVE-2016-5385).
var DefaultStripRequestHeaders = []string{
	"X-Real-IP", "X-Client-IP", "True-Client-IP", "CF-Connecting-IP", "Fastly-Client-IP", "X-Cluster-Client-IP",
	"X-Consumer", "X-Consumer-*", "X-Authenticated-*", "X-Forwarded-User", "X-Remote-User",
	"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override",
	"X-Original-URL", "X-Rewrite-URL", "X-Original-URI",
	"Proxy",
}

// Values of server.underscore_headers.
const (
	UnderscoreHeadersDrop   = "drop"
	UnderscoreHeadersReject = "reject"
	UnderscoreHeadersAllow  = "allow"
)

// Upstream is a named group of targets with one balancing policy, one
// connection pool configuration and one set of timeouts.
type Upstream struct {
	// Balancer is the policy picking a target per request: round_robin
	// (the default), weighted, random, least_conn, p2c, p2c_ewma,
	// consistent_hash (Maglev, or hash.algorithm: ring), maglev or ring.
	// Weights count for every policy but round_robin.
	Balancer string `json:"balancer" yaml:"balancer"`

	// Hash is the request key of consistent-hash balancers; required with
	// them, not allowed with other balancers.
	Hash Hash `json:"hash" yaml:"hash"`

	// Targets are the upstream endpoints. At least one, unless Discovery
	// finds them; with Discovery, those listed serve until its first
	// answer.
	Targets []Target `json:"targets" yaml:"targets"`

	// Discovery finds the targets at run time (DNS, etcd, a file).
	Discovery *Discovery `json:"discovery,omitempty" yaml:"discovery"`

	// Pool tunes the connection pool to each target; zero fields take the
	// -upstream-* flags' values.
	Pool Pool `json:"pool" yaml:"pool"`

	// Timeouts bound the time spent on the upstream.
	Timeouts Timeouts `json:"timeouts" yaml:"timeouts"`

	// Retries send a failed attempt again to another target, within a
	// budget. Default: one retry on connect errors, resets, per-try
	// timeouts, 502, 503 and 504.
	Retries Retries `json:"retries" yaml:"retries"`

	// Health configures active health checks, passive outlier ejection and
	// the panic threshold.
	Health Health `json:"health" yaml:"health"`

	// CircuitBreaker limits the requests in flight and waiting for a
	// connection. Default: unlimited.
	CircuitBreaker CircuitBreaker `json:"circuit_breaker" yaml:"circuit_breaker"`

	// TLS is how the gateway speaks TLS to the https:// targets (CA,
	// server name, client certificate). Absent: system roots, each
	// target's host, no client certificate.
	TLS *UpstreamTLS `json:"tls,omitempty" yaml:"tls"`
}

// Target is one endpoint of an upstream.
type Target struct {
	// URL is "http://host[:port]" (port 80 by default) or
	// "https://host[:port]" (443; TLS as the upstream's tls block says).
	// A path is not allowed: routes own paths.
	URL string `json:"url" yaml:"url"`

	// Weight is the target's relative share for weighted policies.
	// Default 1. Must be >= 0; 0 takes the default.
	Weight int `json:"weight" yaml:"weight"`
}

// Pool tunes one HostClient per target. Zero fields take the value of the
// matching -upstream-* flag.
type Pool struct {
	// MaxConns is the most connections open to one target.
	// Default 512 (-upstream-max-conns).
	MaxConns int `json:"max_conns" yaml:"max_conns"`

	// MaxIdleConnDuration closes a pooled connection idle for this long.
	// Default 10s (-upstream-max-idle-conn-duration).
	MaxIdleConnDuration Duration `json:"max_idle_conn_duration" yaml:"max_idle_conn_duration"`

	// MaxConnWaitTimeout is how long a request waits for a free connection
	// when MaxConns are busy, before a 503. Default 0 (-upstream-max-conn-wait-timeout):
	// no wait, an immediate 503.
	MaxConnWaitTimeout Duration `json:"max_conn_wait_timeout" yaml:"max_conn_wait_timeout"`

	// ReadBufferSize is the per-connection read buffer; it also caps the
	// upstream response header size. Default 8KiB (-upstream-read-buffer-size).
	ReadBufferSize Size `json:"read_buffer_size" yaml:"read_buffer_size"`

	// WriteBufferSize is the per-connection write buffer.
	// Default 8KiB (-upstream-write-buffer-size).
	WriteBufferSize Size `json:"write_buffer_size" yaml:"write_buffer_size"`

	// MaxBufferedBody is the largest response body (with a known length)
	// read whole before it is sent on; longer or chunked bodies are
	// streamed through with bounded memory. Default 1MiB
	// (-upstream-max-buffered-body).
	MaxBufferedBody Size `json:"max_buffered_body" yaml:"max_buffered_body"`

	// MaxResponseBody fails (502) a response whose body is longer.
	// Default 0 (-upstream-max-response-body): unlimited.
	MaxResponseBody Size `json:"max_response_body" yaml:"max_response_body"`
}

// Timeouts bound the time a request spends on an upstream.
type Timeouts struct {
	// Connect bounds establishing a TCP connection to a target. Default 1s.
	Connect Duration `json:"connect" yaml:"connect"`

	// PerTry bounds one attempt: sending the request and receiving the
	// whole response header (and a buffered body); for a streamed body it
	// bounds each read. Default 0: no limit of its own; the route's timeout
	// bounds the attempt, and Request each streamed read.
	// Timeouts fire up to 1/16 of their length (at most 100ms) late: a
	// connection keeps its deadline across requests within that slack.
	PerTry Duration `json:"per_try" yaml:"per_try"`

	// Request bounds the whole upstream exchange of one client request,
	// from its arrival to the response header. Default 30s.
	Request Duration `json:"request" yaml:"request"`
}

// Route maps matching requests to one terminal: the proxy to an upstream
// (upstream), a fixed response (static) or a redirect (redirect). Exactly
// one of them is set.
type Route struct {
	// Name identifies the route in logs, errors and (later) metrics.
	// Default "route<N>" (its index). Unique.
	Name string `json:"name" yaml:"name"`

	// Match says which requests the route takes.
	Match Match `json:"match" yaml:"match"`

	// Upstream names the upstream the route proxies to: the proxy
	// terminal. Required unless the route has another terminal (static,
	// redirect), with which it is not allowed.
	Upstream string `json:"upstream" yaml:"upstream"`

	// Static answers the route's requests with a fixed response, without
	// an upstream. Absent: not a static route.
	Static *StaticResponse `json:"static" yaml:"static"`

	// Redirect answers the route's requests with a redirect to a URL built
	// from the route's path parameters, without an upstream. Absent: not a
	// redirect route.
	Redirect *Redirect `json:"redirect" yaml:"redirect"`

	// Aggregate answers the route's requests by calling several backends
	// and merging their JSON responses. Absent: not an aggregate route.
	Aggregate *Aggregate `json:"aggregate" yaml:"aggregate"`

	// GRPC answers the route's requests by transcoding them to a gRPC
	// unary call and its answer to JSON. Absent: not a grpc route.
	GRPC *GRPC `json:"grpc" yaml:"grpc"`

	// SOAP answers the route's requests by calling a SOAP service with an
	// envelope built from the request and converting its XML answer to
	// JSON. Absent: not a soap route.
	SOAP *SOAP `json:"soap" yaml:"soap"`

	// Rewrite changes the request on its way upstream.
	Rewrite Rewrite `json:"rewrite" yaml:"rewrite"`

	// Timeout overrides the upstream's timeouts.request for this route.
	// Default 0: the upstream's.
	Timeout Duration `json:"timeout" yaml:"timeout"`

	// RateLimit limits the route's request rate: one limit as a mapping,
	// several as a list (all must admit), or "off" to opt out of the
	// top-level rate_limit. Absent: the top-level rate_limit, if any.
	RateLimit RateLimits `json:"rate_limit" yaml:"rate_limit"`

	// Concurrency caps the route's requests in flight. Absent: no cap.
	Concurrency *Concurrency `json:"concurrency" yaml:"concurrency"`

	// Auth authenticates and authorizes the route's requests. Absent:
	// none; the route is public.
	Auth *Auth `json:"auth" yaml:"auth"`

	// IP allows or denies clients by IP, after the top-level ip rules.
	// Absent: only the top-level rules.
	IP *IPRules `json:"ip" yaml:"ip"`

	// CORS answers preflights and sets the CORS response headers. Absent:
	// no CORS handling; preflights go to the route's terminal.
	CORS *CORS `json:"cors" yaml:"cors"`

	// Headers transform request headers on the way upstream and response
	// headers on the way back. Absent: none.
	Headers *HeaderTransforms `json:"headers" yaml:"headers"`

	// Cache caches the route's responses in the shared store (top-level
	// cache). Absent: no caching.
	Cache *Cache `json:"cache" yaml:"cache"`

	// Protocol is what the proxy speaks to the upstream: "http" (HTTP/1.1,
	// the default) or "grpc": gRPC passed through as it is (HTTP/2 to h2c
	// targets, streams and trailers included), for gRPC clients reaching
	// the gateway over HTTP/2 (server.http2 or server.h2c).
	Protocol string `json:"protocol" yaml:"protocol"`

	// WebSocket lets the route carry WebSocket connections to its
	// upstream. Absent: an Upgrade request is proxied as a plain request
	// (its Upgrade header removed as hop-by-hop).
	WebSocket *WebSocket `json:"websocket" yaml:"websocket"`
}

// Match selects requests. All given conditions must hold.
type Match struct {
	// Hosts are exact host names ("api.example.com") or wildcards
	// ("*.example.com": any name ending in ".example.com"), compared
	// case-insensitively without the port. Empty: any host.
	Hosts []string `json:"hosts" yaml:"hosts"`

	// Path is a template: static segments, "{name}" for one whole segment,
	// and a final "{name:*}" for the rest of the path (possibly empty).
	// It is matched against the normalized path. Default "/{path:*}".
	Path string `json:"path" yaml:"path"`

	// Methods the route accepts ("GET", "POST", ...). Empty: any method.
	Methods []string `json:"methods" yaml:"methods"`

	// Headers that must be present with exactly these values.
	Headers map[string]string `json:"headers" yaml:"headers"`

	// Query arguments that must be present with exactly these values.
	Query map[string]string `json:"query" yaml:"query"`
}

// Rewrite changes the request sent upstream.
type Rewrite struct {
	// StripPrefix removes this literal prefix from the path, at a segment
	// boundary ("/api" turns "/api/users" into "/users" and "/api" into
	// "/"). Not allowed together with Path.
	StripPrefix string `json:"strip_prefix" yaml:"strip_prefix"`

	// Path replaces the path with a template that may use the match's
	// parameters: "/users/{id}". An optional "?a=b" part is put before the
	// client's query string. Default "": the path is kept.
	Path string `json:"path" yaml:"path"`

	// Host is the Host header sent upstream: "target" (the target's
	// host:port, the default), "preserve" (the client's), or a literal
	// host name.
	Host string `json:"host" yaml:"host"`
}
