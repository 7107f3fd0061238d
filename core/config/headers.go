package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// HeaderTransforms change a route's request headers on the way upstream
// (after the route's auth and rate limit, before the terminal) and its
// response headers on the way back (before the response is written, the
// gateway's own error answers included).
type HeaderTransforms struct {
	// Request are the ops on the request sent upstream. Default none.
	Request HeaderOps `json:"request" yaml:"request"`
	// Response are the ops on the response sent to the client. Default
	// none.
	Response HeaderOps `json:"response" yaml:"response"`
}

// HeaderOps are applied in the order remove, rename, set, add. Header names
// compare case-insensitively. Values of set and add are templates:
// "{client_ip}", "{request_id}", "{route}", "{consumer}" (the
// authenticated consumer's name, empty without one) and the route's path
// parameters ("{id}" of "/users/{id}") are replaced per request; "{{" is
// a literal "{". Framing and hop-by-hop headers (Content-Length,
// Transfer-Encoding, Connection, ...) and Host can't be touched.
type HeaderOps struct {
	// Remove lists header names, or prefixes ending in '*' ("X-Gw-*"
	// removes every header whose name starts with "X-Gw-"). Default none.
	Remove []string `json:"remove" yaml:"remove"`
	// Rename maps a header name to its new name; several values are joined
	// into one with ", ". Default none.
	Rename map[string]string `json:"rename" yaml:"rename"`
	// Set sets headers to a value template, replacing every value they
	// had. Default none.
	Set map[string]string `json:"set" yaml:"set"`
	// Add adds a value template to headers beside any values they have.
	// Default none.
	Add map[string]string `json:"add" yaml:"add"`
}

// IsZero reports whether o has no op.
func (o *HeaderOps) IsZero() bool {
	return len(o.Remove) == 0 && len(o.Rename) == 0 && len(o.Set) == 0 && len(o.Add) == 0
}

// SecurityHeaders are response headers the gateway sets on every routed
// response: the upstream's, and the gateway's own answers (403, 401, 429,
// 502 ...). A value of "" sends nothing; "off" turns a default off.
type SecurityHeaders struct {
	// Off disables every security header. Default false.
	Off bool `json:"off" yaml:"off"`
	// HSTS is the Strict-Transport-Security value, sent on TLS requests
	// only (browsers ignore it on plain HTTP). Default
	// "max-age=31536000; includeSubDomains"; "off": not sent.
	HSTS string `json:"hsts" yaml:"hsts"`
	// ContentTypeOptions is the X-Content-Type-Options value. Default
	// "nosniff"; "off": not sent.
	ContentTypeOptions string `json:"content_type_options" yaml:"content_type_options"`
	// FrameOptions is the X-Frame-Options value: "DENY" or "SAMEORIGIN".
	// Default "": not sent.
	FrameOptions string `json:"frame_options" yaml:"frame_options"`
	// ReferrerPolicy is the Referrer-Policy value, such as
	// "strict-origin-when-cross-origin". Default "": not sent.
	ReferrerPolicy string `json:"referrer_policy" yaml:"referrer_policy"`
	// ContentSecurityPolicy is the Content-Security-Policy value, such as
	// "default-src 'self'". Default "": not sent.
	ContentSecurityPolicy string `json:"content_security_policy" yaml:"content_security_policy"`
	// Set are other response headers to send, name to value
	// (Permissions-Policy, Cross-Origin-Opener-Policy ...). Default none.
	Set map[string]string `json:"set" yaml:"set"`
	// Override replaces a value the upstream already set. Default false:
	// a header the upstream set is kept as it is.
	Override bool `json:"override" yaml:"override"`
}

// Security header defaults.
const (
	DefaultHSTS               = "max-age=31536000; includeSubDomains"
	DefaultContentTypeOptions = "nosniff"
	// HeaderOff turns a security header with a default off.
	HeaderOff = "off"
)

// HeaderPartKind is what one piece of a header value template is.
type HeaderPartKind uint8

// Kinds of HeaderPart.
const (
	PartLiteral HeaderPartKind = iota
	PartParam                  // a path parameter; Value is its name
	PartClientIP
	PartRequestID
	PartRoute
	PartConsumer
)

// HeaderPart is one piece of a header value template.
type HeaderPart struct {
	Kind HeaderPartKind
	// Value is the literal text, or the path parameter's name.
	Value string
}

// headerPlaceholders are the template names that are not path parameters;
// they win over a path parameter of the same name.
var headerPlaceholders = []struct {
	name string
	kind HeaderPartKind
}{
	{"client_ip", PartClientIP}, {"request_id", PartRequestID}, {"route", PartRoute}, {"consumer", PartConsumer},
}

// ParseHeaderTemplate splits a header value template into parts: literal
// text ("{{" is a literal "{"), "{client_ip}", "{request_id}", "{route}",
// "{consumer}" and the route's path parameters params.
func ParseHeaderTemplate(s string, params []string) ([]HeaderPart, error) {
	var parts []HeaderPart
	var lit []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '{' {
			lit = append(lit, c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '{' {
			lit = append(lit, '{')
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf(`unclosed "{" in %q; write "{{" for a literal "{"`, s)
		}
		name := s[i+1 : i+end]
		p, ok := placeholder(name, params)
		if !ok {
			return nil, fmt.Errorf(`unknown placeholder "{%s}" in %q; known: {client_ip}, {request_id}, {route}, {consumer} and the route's path parameters (%s); write "{{" for a literal "{"`,
				name, s, listOrNone(params))
		}
		if len(lit) > 0 {
			parts = append(parts, HeaderPart{Value: string(lit)})
			lit = lit[:0]
		}
		parts = append(parts, p)
		i += end
	}
	if len(lit) > 0 {
		parts = append(parts, HeaderPart{Value: string(lit)})
	}
	return parts, nil
}

func placeholder(name string, params []string) (HeaderPart, bool) {
	for _, p := range headerPlaceholders {
		if p.name == name {
			return HeaderPart{Kind: p.kind}, true
		}
	}
	if containsString(params, name) {
		return HeaderPart{Kind: PartParam, Value: name}, true
	}
	return HeaderPart{}, false
}

// protectedHeader says why header name (any case) can't be transformed,
// or "" when it can. request: on the request side.
func protectedHeader(name string, request bool) string {
	switch strings.ToLower(name) {
	case "content-length", "transfer-encoding":
		return "it frames the message body; the gateway sets it from the body it sends"
	case "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "proxy-authenticate", "proxy-authorization", "expect":
		return "it is hop-by-hop: it describes one connection, not the message, and the gateway manages it"
	case "host":
		if request {
			return "set the Host sent upstream with the route's rewrite.host"
		}
		return "Host is a request header"
	}
	return ""
}

// protectedNames are the names protectedHeader refuses, for prefix checks.
var protectedNames = []string{"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection",
	"TE", "Trailer", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization", "Expect", "Host"}

// setHeadersDefaults fills security_headers defaults.
func (c *Config) setHeadersDefaults() {
	s := &c.SecurityHeaders
	if s.HSTS == "" {
		s.HSTS = DefaultHSTS
	}
	if s.ContentTypeOptions == "" {
		s.ContentTypeOptions = DefaultContentTypeOptions
	}
}

// validateHeadersConfig checks security_headers and routes' headers.
func validateHeadersConfig(errs *Errors, c *Config) {
	validateSecurityHeaders(errs, "security_headers", &c.SecurityHeaders)
	for i, r := range c.Routes {
		if r == nil || r.Headers == nil {
			continue
		}
		p := pathIndex("routes", i) + ".headers"
		segs, err := ParsePathTemplate(r.Match.Path)
		if err != nil {
			continue // reported at match.path; the placeholders can't be checked
		}
		params := ParamNames(segs)
		validateHeaderOps(errs, p+".request", &r.Headers.Request, params, true)
		validateHeaderOps(errs, p+".response", &r.Headers.Response, params, false)
	}
}

func validateHeaderOps(errs *Errors, path string, o *HeaderOps, params []string, request bool) {
	for i, name := range o.Remove {
		p := pathIndex(path+".remove", i)
		if prefix, ok := strings.CutSuffix(name, "*"); ok {
			validateRemovePrefix(errs, p, name, prefix, request)
			continue
		}
		validateOpName(errs, p, name, request)
	}
	for _, old := range slices.Sorted(maps.Keys(o.Rename)) {
		p := pathField(path+".rename", old)
		if validateOpName(errs, p, old, request) && isCookie(old) {
			errs.add(p, fmt.Sprintf("%q can't be renamed: its values can't be joined into one; remove it and set the new one instead", old))
			continue
		}
		validateOpName(errs, p, o.Rename[old], request)
	}
	for _, op := range []struct {
		name string
		m    map[string]string
	}{{"set", o.Set}, {"add", o.Add}} {
		for _, name := range slices.Sorted(maps.Keys(op.m)) {
			p := pathField(path+"."+op.name, name)
			if !validateOpName(errs, p, name, request) {
				continue
			}
			if _, err := ParseHeaderTemplate(op.m[name], params); err != nil {
				errs.add(p, err.Error())
			} else if why := headerValueProblem(op.m[name]); why != "" {
				errs.add(p, why)
			}
		}
	}
}

func isCookie(name string) bool {
	return strings.EqualFold(name, "Set-Cookie") || strings.EqualFold(name, "Cookie")
}

// validateOpName checks a header name of a transform; false when it is bad.
func validateOpName(errs *Errors, path, name string, request bool) bool {
	if !validToken(name) {
		errs.add(path, fmt.Sprintf("%q is not a header name: use letters, digits and !#$%%&'*+-.^_`|~", name))
		return false
	}
	if why := protectedHeader(name, request); why != "" {
		errs.add(path, fmt.Sprintf("%q can't be transformed: %s", name, why))
		return false
	}
	return true
}

func validateRemovePrefix(errs *Errors, path, name, prefix string, request bool) {
	if prefix == "" || !validToken(prefix) || strings.Contains(prefix, "*") {
		errs.add(path, fmt.Sprintf(`%q is not a header name or a prefix ending in '*' such as "X-Gw-*"`, name))
		return
	}
	for _, h := range protectedNames {
		if len(h) >= len(prefix) && strings.EqualFold(h[:len(prefix)], prefix) && protectedHeader(h, request) != "" {
			errs.add(path, fmt.Sprintf("%q would also remove %s, which can't be transformed: %s; list the headers instead", name, h, protectedHeader(h, request)))
			return
		}
	}
}

// headerValueProblem says what makes s unfit as a header value, or "".
func headerValueProblem(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return fmt.Sprintf("the value has a control character (byte %#x at %d); header values are one line of text", c, i)
		}
	}
	if strings.TrimSpace(s) != s {
		return "the value starts or ends with white space, which HTTP strips; remove it"
	}
	return ""
}

func validateSecurityHeaders(errs *Errors, path string, s *SecurityHeaders) {
	if s.HSTS != HeaderOff && s.HSTS != "" && !strings.HasPrefix(strings.ToLower(s.HSTS), "max-age=") {
		errs.add(path+".hsts", fmt.Sprintf(`%q must start with "max-age=<seconds>", such as %q, or be "off"`, s.HSTS, DefaultHSTS))
	}
	if v := s.ContentTypeOptions; v != HeaderOff && v != "" && v != DefaultContentTypeOptions {
		errs.add(path+".content_type_options", fmt.Sprintf(`%q: the only value is "nosniff"; write "off" to send none`, s.ContentTypeOptions))
	}
	if f := strings.ToUpper(s.FrameOptions); f != "" && f != "DENY" && f != "SAMEORIGIN" {
		errs.add(path+".frame_options", fmt.Sprintf(`%q: write "DENY" or "SAMEORIGIN" (ALLOW-FROM is obsolete: use content_security_policy "frame-ancestors")`, s.FrameOptions))
	}
	for _, f := range []struct{ field, v string }{
		{"hsts", s.HSTS}, {"referrer_policy", s.ReferrerPolicy}, {"content_security_policy", s.ContentSecurityPolicy},
	} {
		if why := headerValueProblem(f.v); why != "" {
			errs.add(path+"."+f.field, why)
		}
	}
	validateReferrerPolicy(errs, path+".referrer_policy", s.ReferrerPolicy)
	for _, name := range slices.Sorted(maps.Keys(s.Set)) {
		p := pathField(path+".set", name)
		if !validateOpName(errs, p, name, false) {
			continue
		}
		if field := securityField(name); field != "" {
			errs.add(p, fmt.Sprintf("%q has its own field; set security_headers.%s", name, field))
		} else if why := headerValueProblem(s.Set[name]); why != "" {
			errs.add(p, why)
		}
	}
}

var referrerPolicies = []string{"no-referrer", "no-referrer-when-downgrade", "origin", "origin-when-cross-origin",
	"same-origin", "strict-origin", "strict-origin-when-cross-origin", "unsafe-url"}

func validateReferrerPolicy(errs *Errors, path, v string) {
	if v == "" {
		return
	}
	for t := range strings.SplitSeq(v, ",") {
		if !slices.Contains(referrerPolicies, strings.ToLower(strings.TrimSpace(t))) {
			errs.add(path, fmt.Sprintf("%q is not a referrer policy; write one of %s", strings.TrimSpace(t), strings.Join(referrerPolicies, ", ")))
			return
		}
	}
}

// securityField returns the security_headers field that sets name, or "".
func securityField(name string) string {
	switch strings.ToLower(name) {
	case "strict-transport-security":
		return "hsts"
	case "x-content-type-options":
		return "content_type_options"
	case "x-frame-options":
		return "frame_options"
	case "referrer-policy":
		return "referrer_policy"
	case "content-security-policy":
		return "content_security_policy"
	}
	return ""
}
