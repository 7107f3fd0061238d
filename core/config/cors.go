package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORS is a route's cross-origin resource sharing policy (Fetch standard,
// https://fetch.spec.whatwg.org/#http-cors-protocol). The gateway answers
// the route's preflights itself (they never reach the upstream) and adds
// the CORS headers to its actual responses.
type CORS struct {
	// AllowOrigins are the origins whose pages may call the route: exact
	// origins ("https://app.example.com", "http://localhost:3000"),
	// wildcard subdomains ("https://*.example.com": any depth of
	// subdomain, a.example.com and a.b.example.com, but not example.com
	// itself), "null" (sandboxed frames, file: pages; rarely wise), or
	// "*" alone for any origin. Scheme and host compare case-insensitively,
	// the port exactly (no port: the scheme's default, as browsers send
	// it). Required.
	AllowOrigins []string `json:"allow_origins" yaml:"allow_origins"`

	// AllowMethods are the methods a preflight may ask for, or "*" for
	// any. Default: the route's match.methods, or GET, HEAD, POST when the
	// route takes any method.
	AllowMethods []string `json:"allow_methods" yaml:"allow_methods"`

	// AllowHeaders are the request headers a preflight may ask for
	// (case-insensitive), or "*" for any. Default empty: the headers the
	// preflight asks for (Access-Control-Request-Headers) are reflected,
	// so any is allowed.
	AllowHeaders []string `json:"allow_headers" yaml:"allow_headers"`

	// ExposeHeaders are the response headers the page's script may read
	// beyond the CORS-safelisted ones (Access-Control-Expose-Headers), or
	// "*" for all (not with allow_credentials). Default none.
	ExposeHeaders []string `json:"expose_headers" yaml:"expose_headers"`

	// AllowCredentials lets pages send cookies and Authorization and read
	// the answer (Access-Control-Allow-Credentials: true). With it the
	// origins must be listed: "*" is an error. Default false.
	AllowCredentials bool `json:"allow_credentials" yaml:"allow_credentials"`

	// MaxAge is how long a browser may cache a preflight's answer
	// (Access-Control-Max-Age, whole seconds; browsers cap it, Chrome at
	// 2h). Default 0: no Access-Control-Max-Age, the browser's default
	// (5s).
	MaxAge Duration `json:"max_age" yaml:"max_age"`

	// AllowPrivateNetwork answers a preflight that asks
	// Access-Control-Request-Private-Network: true (a public page calling
	// a private-network address) with Access-Control-Allow-Private-Network:
	// true. Default false: such preflights get no such header and the
	// browser refuses.
	AllowPrivateNetwork bool `json:"allow_private_network" yaml:"allow_private_network"`
}

// CORSDefaultMethods are the methods a CORS preflight may ask for on a
// route that takes any method.
var CORSDefaultMethods = []string{"GET", "HEAD", "POST"}

// CORSOrigin is one parsed cors.allow_origins entry.
type CORSOrigin struct {
	// Any is "*"; Null is "null". Otherwise Scheme and Host are lowercase,
	// Port is "" or the digits.
	Any, Null bool
	Scheme    string
	// Host is the host name or bracketed IPv6 literal; for a wildcard the
	// suffix after "*", starting with ".".
	Host     string
	Port     string
	Wildcard bool
}

// ParseCORSOrigin parses an allow_origins entry. Its errors say what to
// write instead.
func ParseCORSOrigin(s string) (CORSOrigin, error) {
	switch s {
	case "*":
		return CORSOrigin{Any: true}, nil
	case "null":
		return CORSOrigin{Null: true}, nil
	}
	o, why := parseOrigin(s)
	if why != "" {
		return o, fmt.Errorf(`%q is not an origin: %s; write "https://app.example.com" or "https://*.example.com"`, s, why)
	}
	return o, nil
}

func parseOrigin(s string) (CORSOrigin, string) {
	var o CORSOrigin
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return o, `it needs a scheme, "https://" or "http://"`
	}
	o.Scheme = strings.ToLower(scheme)
	if o.Scheme != "http" && o.Scheme != "https" {
		return o, fmt.Sprintf("the scheme %q is not http or https", scheme)
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return o, "an origin has no path, query or trailing \"/\""
	}
	if strings.IndexByte(rest, '@') >= 0 {
		return o, "an origin has no user name"
	}
	host := rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, o.Port = rest[:i], rest[i+1:]
		if n, err := strconv.Atoi(o.Port); err != nil || n < 1 || n > 65535 || o.Port[0] == '0' {
			return o, fmt.Sprintf("the port %q is not a number 1-65535", o.Port)
		}
	}
	host = strings.ToLower(host)
	if suffix, ok := strings.CutPrefix(host, "*"); ok {
		if !strings.HasPrefix(suffix, ".") || !validDNSName(suffix[1:]) || !strings.Contains(suffix[1:], ".") {
			return o, `a wildcard is "*." before a domain of at least two labels, such as "https://*.example.com"`
		}
		o.Host, o.Wildcard = suffix, true
		return o, ""
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") || !validIPv6Literal(host[1:len(host)-1]) {
			return o, "the host is not a valid [IPv6] literal"
		}
		o.Host = host
		return o, ""
	}
	if !validDNSName(host) {
		return o, fmt.Sprintf("the host %q is not a host name", host)
	}
	o.Host = host
	return o, ""
}

func validIPv6Literal(s string) bool {
	if s == "" || strings.IndexByte(s, ':') < 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == ':' || c == '.') {
			return false
		}
	}
	return true
}

// setCORSDefaults fills routes' cors defaults.
func (c *Config) setCORSDefaults() {
	for _, r := range c.Routes {
		if r == nil || r.CORS == nil || r.CORS.AllowMethods != nil {
			continue
		}
		if len(r.Match.Methods) > 0 {
			r.CORS.AllowMethods = slices.Clone(r.Match.Methods)
		} else {
			r.CORS.AllowMethods = slices.Clone(CORSDefaultMethods)
		}
	}
}

// validateCORSConfig checks routes' cors.
func validateCORSConfig(errs *Errors, c *Config) {
	for i, r := range c.Routes {
		if r != nil && r.CORS != nil {
			validateCORS(errs, pathIndex("routes", i)+".cors", r.CORS)
		}
	}
}

func validateCORS(errs *Errors, path string, c *CORS) {
	validateCORSOrigins(errs, path+".allow_origins", c.AllowOrigins, c.AllowCredentials)
	validateCORSTokens(errs, path+".allow_methods", c.AllowMethods, "method", true)
	validateCORSTokens(errs, path+".allow_headers", c.AllowHeaders, "header", false)
	validateCORSTokens(errs, path+".expose_headers", c.ExposeHeaders, "header", false)
	if c.AllowCredentials && slices.Contains(c.ExposeHeaders, "*") {
		errs.add(path+".expose_headers", `"*" is literal with allow_credentials (Fetch standard): browsers would expose only a header named "*"; list the headers to expose`)
	}
	switch {
	case c.MaxAge < 0:
		errs.add(path+".max_age", fmt.Sprintf("must be >= 0 (0: no Access-Control-Max-Age), got %s", c.MaxAge))
	case c.MaxAge.D()%time.Second != 0:
		errs.add(path+".max_age", fmt.Sprintf("Access-Control-Max-Age is whole seconds; write %s or %s, got %s",
			c.MaxAge.D().Truncate(time.Second), c.MaxAge.D().Truncate(time.Second)+time.Second, c.MaxAge))
	}
}

func validateCORSOrigins(errs *Errors, path string, origins []string, credentials bool) {
	if len(origins) == 0 {
		errs.add(path, `must list at least one origin, such as ["https://app.example.com"], or "*" for any`)
		return
	}
	seen := make(map[CORSOrigin]int, len(origins))
	for i, s := range origins {
		p := pathIndex(path, i)
		o, err := ParseCORSOrigin(s)
		switch {
		case err != nil:
			errs.add(p, err.Error())
		case o.Any && len(origins) > 1:
			errs.add(p, `"*" admits every origin; keep either "*" alone or the list of origins`)
		case o.Any && credentials:
			errs.add(p, `"*" with allow_credentials: true would let every site make credentialed requests (cookies, Authorization) and read the answers; list the origins that may, such as "https://app.example.com"`)
		case seen[o] > 0:
			errs.add(p, fmt.Sprintf("%q is the same origin as allow_origins[%d]; keep one", s, seen[o]-1))
		default:
			seen[o] = i + 1
		}
	}
}

// validateCORSTokens checks a list of method or header names, which may be
// "*" alone.
func validateCORSTokens(errs *Errors, path string, list []string, what string, upper bool) {
	for i, s := range list {
		p := pathIndex(path, i)
		switch {
		case s == "*" && len(list) > 1:
			errs.add(p, fmt.Sprintf(`"*" allows any %s; keep either "*" alone or the list`, what))
		case s == "*":
		case !validToken(s):
			errs.add(p, fmt.Sprintf("%q is not a %s name: use letters, digits and !#$%%&'*+-.^_`|~", s, what))
		case upper && strings.ToUpper(s) != s:
			errs.add(p, fmt.Sprintf(`%q: methods are case-sensitive; write %q`, s, strings.ToUpper(s)))
		case slices.ContainsFunc(list[:i], func(v string) bool { return strings.EqualFold(v, s) }):
			errs.add(p, fmt.Sprintf("%q is listed twice", s))
		}
	}
}
