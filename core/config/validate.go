package config

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Validate checks a config after SetDefaults. It returns nil when the
// config is valid, else Errors listing every problem, each with its path
// and what to change.
func (c *Config) Validate() error {
	var errs Errors
	validateListen(&errs, c.Listen)
	validateServer(&errs, "server", &c.Server)
	validateAdmin(&errs, "admin", &c.Admin)
	if c.Admin.Listen != AdminOff && samePort(c.Admin.Listen, c.Listen) {
		errs.add("admin.listen", fmt.Sprintf("%q would share listen %q; give the admin API its own port", c.Admin.Listen, c.Listen))
	}
	validateAccessLog(&errs, "access_log", &c.AccessLog)
	validateTLS(&errs, "tls", &c.TLS)
	for _, name := range slices.Sorted(maps.Keys(c.Upstreams)) {
		validateUpstream(&errs, pathField("upstreams", name), name, c.Upstreams[name])
	}
	validateRoutes(&errs, c)
	validateRateLimitConfig(&errs, c)
	validateAuthConfig(&errs, c)
	validateJWTConfig(&errs, c)
	validateIPConfig(&errs, c)
	validateCORSConfig(&errs, c)
	validateHeadersConfig(&errs, c)
	validateCacheConfig(&errs, c)
	return errs.err()
}

const minBuffer = 1 << 10

func validateListen(errs *Errors, listen string) {
	validateAddr(errs, "listen", listen)
}

// samePort reports whether two listen addresses would collide: the same
// port on the same host, or on any host when either is a wildcard.
func samePort(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

func validateAddr(errs *Errors, path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	switch {
	case addr == "":
		errs.add(path, `must be set, such as ":8080" or "127.0.0.1:8080"`)
	case err != nil:
		errs.add(path, fmt.Sprintf(`want "host:port" such as ":8080" or "127.0.0.1:8080", got %q`, addr))
	case !validPort(port, 0):
		errs.add(path, fmt.Sprintf("port %q must be a number 0-65535", port))
	}
}

func validateServer(errs *Errors, path string, s *Server) {
	positiveDuration(errs, path+".read_timeout", s.ReadTimeout)
	positiveDuration(errs, path+".write_timeout", s.WriteTimeout)
	positiveDuration(errs, path+".idle_timeout", s.IdleTimeout)
	positiveSize(errs, path+".max_request_body", s.MaxRequestBody)
	minSize(errs, path+".max_header_bytes", s.MaxHeaderBytes, minBuffer)
	if s.Concurrency <= 0 {
		errs.add(path+".concurrency", fmt.Sprintf("must be > 0, got %d", s.Concurrency))
	}
	unlimitedOrMore(errs, path+".max_conns_per_ip", s.MaxConnsPerIP)
	unlimitedOrMore(errs, path+".max_requests_per_conn", s.MaxRequestsPerConn)
	positiveDuration(errs, path+".drain_timeout", s.DrainTimeout)
	for i, n := range s.StripRequestHeaders {
		if !validHeaderPattern(n) {
			errs.add(pathIndex(path+".strip_request_headers", i), fmt.Sprintf(`%q is not a header name (a token) or a prefix ending in '*', such as "X-Internal-*"`, n))
		}
	}
	switch s.UnderscoreHeaders {
	case UnderscoreHeadersDrop, UnderscoreHeadersReject, UnderscoreHeadersAllow:
	default:
		errs.add(path+".underscore_headers", fmt.Sprintf("%q: want drop, reject or allow", s.UnderscoreHeaders))
	}
	for i, p := range s.TrustedProxies {
		if !validIPOrCIDR(p) {
			errs.add(pathIndex(path+".trusted_proxies", i), fmt.Sprintf(`%q is not an IP or CIDR; write one such as "10.0.0.1" or "10.0.0.0/8"`, p))
		}
	}
}

// validHeaderPattern reports whether s is a header name (an RFC 9110
// token) or such a prefix followed by '*'.
func validHeaderPattern(s string) bool {
	s = strings.TrimSuffix(s, "*")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func validIPOrCIDR(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParsePrefix(s)
	return err == nil
}

func positiveDuration(errs *Errors, path string, d Duration) {
	if d <= 0 {
		errs.add(path, fmt.Sprintf(`must be > 0, such as "30s", got %s`, d))
	}
}

func nonNegativeDuration(errs *Errors, path string, d Duration) {
	if d < 0 {
		errs.add(path, fmt.Sprintf("must be >= 0, got %s", d))
	}
}

func positiveSize(errs *Errors, path string, s Size) {
	if s <= 0 {
		errs.add(path, fmt.Sprintf(`must be > 0, such as "1MiB", got %s`, s))
	}
}

func minSize(errs *Errors, path string, s, least Size) {
	if s < least {
		errs.add(path, fmt.Sprintf("must be at least %s, got %s", least, s))
	}
}

func unlimitedOrMore(errs *Errors, path string, n int) {
	if n < 0 {
		errs.add(path, fmt.Sprintf("must be >= 0 (0 means unlimited), got %d", n))
	}
}

// validName reports whether s is a non-empty upstream or route name of
// letters, digits, '_', '.' and '-'.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) && s[i] != '.' && s[i] != '-' {
			return false
		}
	}
	return true
}

const nameCharset = "letters, digits, '_', '.' and '-'"

func validateUpstream(errs *Errors, path, name string, u *Upstream) {
	if !validName(name) {
		errs.add(path, fmt.Sprintf("name %q may only use %s", name, nameCharset))
	}
	if u == nil {
		errs.add(path, `is empty; give it targets, such as targets: [{url: "http://127.0.0.1:9001"}]`)
		return
	}
	validateBalancer(errs, path+".balancer", u.Balancer)
	if u.Discovery != nil {
		validateDiscovery(errs, path+".discovery", u.Discovery)
		if len(u.Targets) > 0 {
			validateTargets(errs, path+".targets", u.Targets)
		}
	} else {
		validateTargets(errs, path+".targets", u.Targets)
	}
	validatePool(errs, path+".pool", &u.Pool)
	validateTimeouts(errs, path+".timeouts", &u.Timeouts)
	validateResilience(errs, path, u)
	validateUpstreamTLS(errs, path+".tls", u)
}

// ValidateTargets checks a target list set at run time (discovery, the
// admin API) as Validate checks an upstream's targets; path prefixes the
// problems. An empty list is allowed.
func ValidateTargets(path string, targets []Target) error {
	var errs Errors
	if len(targets) > 0 {
		validateTargets(&errs, path, targets)
	}
	return errs.err()
}

func validateTargets(errs *Errors, path string, targets []Target) {
	if len(targets) == 0 {
		errs.add(path, `at least one target is required, such as [{url: "http://127.0.0.1:9001"}]`)
		return
	}
	seen := make(map[string]int, len(targets))
	for i, t := range targets {
		p := pathIndex(path, i)
		if t.Weight < 0 {
			errs.add(p+".weight", fmt.Sprintf("must be >= 0 (0 means 1), got %d", t.Weight))
		}
		addr, err := t.Addr()
		if err != nil {
			errs.add(p+".url", err.Error())
			continue
		}
		if first, dup := seen[addr]; dup {
			errs.add(p+".url", fmt.Sprintf("%s is the address of targets[%d] too; list each target once (weights give a bigger share)", addr, first))
			continue
		}
		seen[addr] = i
	}
}

func validatePool(errs *Errors, path string, p *Pool) {
	if p.MaxConns <= 0 {
		errs.add(path+".max_conns", fmt.Sprintf("must be > 0, got %d", p.MaxConns))
	}
	nonNegativeDuration(errs, path+".max_idle_conn_duration", p.MaxIdleConnDuration)
	nonNegativeDuration(errs, path+".max_conn_wait_timeout", p.MaxConnWaitTimeout)
	minSize(errs, path+".read_buffer_size", p.ReadBufferSize, minBuffer)
	minSize(errs, path+".write_buffer_size", p.WriteBufferSize, minBuffer)
	positiveSize(errs, path+".max_buffered_body", p.MaxBufferedBody)
	if p.MaxResponseBody < 0 {
		errs.add(path+".max_response_body", fmt.Sprintf("must be >= 0 (0 means unlimited), got %d", p.MaxResponseBody))
	}
}

func validateTimeouts(errs *Errors, path string, t *Timeouts) {
	positiveDuration(errs, path+".connect", t.Connect)
	positiveDuration(errs, path+".request", t.Request)
	nonNegativeDuration(errs, path+".per_try", t.PerTry)
	if t.Request > 0 && t.PerTry > t.Request {
		errs.add(path+".per_try", fmt.Sprintf("%s is longer than request %s, which always fires first; lower per_try or raise request", t.PerTry, t.Request))
	}
}

func validateRoutes(errs *Errors, c *Config) {
	if len(c.Routes) == 0 {
		errs.add("routes", `at least one route is required, such as [{match: {path: "/{path:*}"}, upstream: NAME}]`)
		return
	}
	upstreams := slices.Sorted(maps.Keys(c.Upstreams))
	names := make(map[string]int, len(c.Routes))
	shapes := make([]string, len(c.Routes))
	for i, r := range c.Routes {
		p := pathIndex("routes", i)
		if r == nil {
			errs.add(p, "is empty; give it at least a terminal: upstream, static or redirect")
			continue
		}
		validateRouteName(errs, p+".name", r.Name, i, names)
		segs, ok := validateMatch(errs, p+".match", &r.Match)
		if ok {
			shapes[i] = templateShape(segs)
		}
		validateTerminal(errs, p, r, upstreams, ParamNames(segs), ok)
		validateWebSocket(errs, p+".websocket", r)
		validateProtocol(errs, p+".protocol", r)
		validateRewrite(errs, p+".rewrite", &r.Rewrite, segs, ok)
		nonNegativeDuration(errs, p+".timeout", r.Timeout)
	}
	validateShadowed(errs, c.Routes, shapes)
}

func validateRouteName(errs *Errors, path, name string, i int, names map[string]int) {
	if !validName(name) {
		errs.add(path, fmt.Sprintf("name %q may only use %s, and must not be empty", name, nameCharset))
		return
	}
	if first, dup := names[name]; dup {
		errs.add(path, fmt.Sprintf("%q is already used by routes[%d]", name, first))
		return
	}
	names[name] = i
}

func validateRouteUpstream(errs *Errors, path, name string, upstreams []string) {
	known := "none; define one under upstreams"
	if len(upstreams) > 0 {
		known = strings.Join(upstreams, ", ")
	}
	switch {
	case name == "":
		errs.add(path, fmt.Sprintf("required: name the upstream that serves the route (known: %s)", known))
	case !slices.Contains(upstreams, name):
		errs.add(path, fmt.Sprintf("unknown upstream %q (known: %s)%s", name, known, didYouMean(name, upstreams)))
	}
}

// validateMatch checks m and returns its parsed path template; ok is false
// when the template does not parse.
func validateMatch(errs *Errors, path string, m *Match) (segs []Segment, ok bool) {
	segs, err := ParsePathTemplate(m.Path)
	if err != nil {
		errs.add(path+".path", err.Error())
	}
	validateHosts(errs, path+".hosts", m.Hosts)
	validateMethods(errs, path+".methods", m.Methods)
	validateHeaders(errs, path+".headers", m.Headers)
	for _, k := range slices.Sorted(maps.Keys(m.Query)) {
		if k == "" {
			errs.add(pathField(path+".query", k), "a query key must not be empty")
		}
	}
	return segs, err == nil
}

func validateHosts(errs *Errors, path string, hosts []string) {
	seen := make(map[string]int, len(hosts))
	for i, h := range hosts {
		p := pathIndex(path, i)
		if msg := hostPatternProblem(h); msg != "" {
			errs.add(p, msg)
			continue
		}
		lower := strings.ToLower(h)
		if first, dup := seen[lower]; dup {
			errs.add(p, fmt.Sprintf("%q is listed twice (hosts[%d]); host names are case-insensitive", h, first))
			continue
		}
		seen[lower] = i
	}
}

// hostPatternProblem returns what is wrong with a match host, or "".
func hostPatternProblem(h string) string {
	name, wildcard := strings.CutPrefix(h, "*.")
	switch {
	case h == "":
		return `must not be empty; write a host such as "api.example.com"`
	case h == "*":
		return `"*" would match any host; leave hosts empty instead`
	case strings.Contains(h, ":"):
		return fmt.Sprintf("%q must not have a port: hosts are matched without it", h)
	case strings.Contains(name, "*"):
		return fmt.Sprintf(`%q: '*' is only allowed as the whole first label, such as "*.example.com"`, h)
	case !validDNSName(name):
		return fmt.Sprintf(`%q is not a host name: use letters, digits, '-' and '.', such as "api.example.com"`, h)
	case wildcard && !strings.Contains(name, "."):
		return fmt.Sprintf(`%q is too broad: a wildcard needs at least two labels after "*.", such as "*.example.com"`, h)
	}
	return ""
}

// validDNSName reports whether s is a host name: dot-separated labels of
// 1-63 letters, digits and '-', not starting or ending with '-', at most 253
// bytes in all.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if !validDNSLabel(label) {
			return false
		}
	}
	return true
}

func validDNSLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validateMethods(errs *Errors, path string, methods []string) {
	for i, m := range methods {
		p := pathIndex(path, i)
		switch {
		case !validToken(m) || strings.ToUpper(m) != m:
			errs.add(p, fmt.Sprintf(`%q is not an uppercase HTTP method such as "GET"`, m))
		case slices.Contains(methods[:i], m):
			errs.add(p, fmt.Sprintf("%q is listed twice", m))
		}
	}
}

// validToken reports whether s is an HTTP token (RFC 9110, section 5.6.2),
// as method and header names are.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isIdentByte(c) || strings.IndexByte("!#$%&'*+-.^`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// hopByHop are the headers a proxy consumes (RFC 9110, section 7.6.1), so a
// route can't match on them.
var hopByHop = []string{"Connection", "Keep-Alive", "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate"}

func validateHeaders(errs *Errors, path string, headers map[string]string) {
	seen := make(map[string]string, len(headers))
	for _, name := range slices.Sorted(maps.Keys(headers)) {
		p := pathField(path, name)
		lower := strings.ToLower(name)
		switch {
		case !validToken(name):
			errs.add(p, fmt.Sprintf("%q is not a header name: use letters, digits and !#$%%&'*+-.^_`|~", name))
		case slices.ContainsFunc(hopByHop, func(h string) bool { return strings.EqualFold(h, name) }):
			errs.add(p, fmt.Sprintf("%q is a hop-by-hop header, which the gateway consumes; match on another header", name))
		case seen[lower] != "":
			errs.add(p, fmt.Sprintf("%q is the same header as %q (names are case-insensitive); keep one", name, seen[lower]))
		default:
			seen[lower] = name
		}
	}
}

// validateRewrite checks rw; segs are the route's parsed path template,
// usable only when segsOK.
func validateRewrite(errs *Errors, path string, rw *Rewrite, segs []Segment, segsOK bool) {
	validateStripPrefix(errs, path+".strip_prefix", rw.StripPrefix)
	if rw.StripPrefix != "" && rw.Path != "" {
		errs.add(path, "strip_prefix and path are both set; path replaces the whole path, so keep one")
	}
	if rw.Path != "" && segsOK {
		if _, _, err := ParseRewriteTemplate(rw.Path, ParamNames(segs)); err != nil {
			errs.add(path+".path", err.Error())
		}
	}
	if msg := rewriteHostProblem(rw.Host); msg != "" {
		errs.add(path+".host", msg)
	}
}

func validateStripPrefix(errs *Errors, path, prefix string) {
	switch {
	case prefix == "":
	case prefix == "/":
		errs.add(path, `"/" strips nothing; remove it`)
	case !strings.HasPrefix(prefix, "/"):
		errs.add(path, fmt.Sprintf(`%q must start with "/", such as "/api"`, prefix))
	case strings.HasSuffix(prefix, "/"):
		errs.add(path, fmt.Sprintf("%q must not end with \"/\": write %q, which strips at a segment boundary", prefix, strings.TrimRight(prefix, "/")))
	}
}

// rewriteHostProblem returns what is wrong with a rewrite.host, or "".
func rewriteHostProblem(h string) string {
	if h == "" || h == RewriteHostTarget || h == RewriteHostPreserve {
		return ""
	}
	host, port := h, ""
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		host, port = h[:i], h[i+1:]
		if !validPort(port, 1) {
			return fmt.Sprintf("port %q of %q must be a number 1-65535", port, h)
		}
	}
	if ip, ok := strings.CutPrefix(host, "["); ok {
		if a, err := netip.ParseAddr(strings.TrimSuffix(ip, "]")); err == nil && a.Is6() && strings.HasSuffix(ip, "]") {
			return ""
		}
	} else if validDNSName(host) {
		return ""
	}
	return fmt.Sprintf(`want "target", "preserve" or a host such as "api.internal" or "api.internal:8080", got %q`, h)
}

// templateShape returns a path template's matching shape: two templates
// with the same shape match the same paths, whatever their parameter
// names.
func templateShape(segs []Segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		switch s.Kind {
		case Param:
			b.WriteString("{}")
		case CatchAll:
			b.WriteString("{*}")
		default:
			b.WriteString(s.Value)
		}
	}
	return b.String()
}

// validateShadowed reports each route that an earlier one always takes
// first. shapes[i] is route i's templateShape, "" when it does not parse.
func validateShadowed(errs *Errors, routes []*Route, shapes []string) {
	for j, r := range routes {
		for i, prev := range routes[:j] {
			if r == nil || prev == nil || shapes[i] == "" || shapes[i] != shapes[j] || !shadows(prev, r) {
				continue
			}
			errs.add(pathIndex("routes", j), fmt.Sprintf("never matches: routes[%d] (%q) has the same hosts, path, methods and conditions and comes first", i, prev.Name))
			break
		}
	}
}

// shadows reports whether a, listed before b with the same path shape,
// takes every request b would. A route restricted to methods ranks before
// one that is not (see the README, "Routing"), so a takes all of b's
// requests only when b's methods are a subset of a's (empty: all).
func shadows(a, b *Route) bool {
	return sameHosts(a.Match.Hosts, b.Match.Hosts) &&
		sameHeaders(a.Match.Headers, b.Match.Headers) &&
		maps.Equal(a.Match.Query, b.Match.Query) &&
		methodsCover(a.Match.Methods, b.Match.Methods)
}

func sameHosts(a, b []string) bool {
	return slices.Equal(hostSet(a), hostSet(b))
}

func hostSet(hosts []string) []string {
	set := make([]string, len(hosts))
	for i, h := range hosts {
		set[i] = strings.ToLower(h)
	}
	slices.Sort(set)
	return slices.Compact(set)
}

func sameHeaders(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for name, v := range a {
		if w, ok := headerValue(b, name); !ok || w != v {
			return false
		}
	}
	return true
}

func headerValue(h map[string]string, name string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func methodsCover(a, b []string) bool {
	if len(a) == 0 {
		return len(b) == 0
	}
	if len(b) == 0 {
		return false
	}
	for _, m := range b {
		if !slices.ContainsFunc(a, func(n string) bool { return strings.EqualFold(n, m) }) {
			return false
		}
	}
	return true
}
