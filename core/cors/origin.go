package cors

import (
	"fastgate/core/config"
)

// origin is a compiled allow_origins entry: lowercase scheme and host (for
// a wildcard, the suffix from its first '.'), and the port digits or "".
type origin struct {
	scheme, host, port []byte
	wildcard           bool
}

func compileOrigin(o config.CORSOrigin) origin {
	return origin{scheme: []byte(o.Scheme), host: []byte(o.Host), port: []byte(o.Port), wildcard: o.Wildcard}
}

// match reports whether the parsed request origin is o. Scheme and host
// compare case-insensitively (o's are lowercase), the port exactly.
func (o *origin) match(scheme, host, port []byte) bool {
	if !equalFold(scheme, o.scheme) || string(port) != string(o.port) {
		return false
	}
	if !o.wildcard {
		return equalFold(host, o.host)
	}
	// Any depth of subdomain, never the bare domain: host is
	// "<labels>.example.com" with at least one label before the suffix.
	// parseOrigin rejects empty labels, so what precedes is a label.
	n := len(host) - len(o.host)
	return n > 0 && equalFold(host[n:], o.host)
}

// parseOrigin splits an Origin header value "scheme://host[:port]" into
// its parts, or reports false when it is not one: the scheme letters,
// digits, '+', '-', '.'; the host a name of non-empty labels of letters,
// digits and '-' (or a bracketed IPv6 literal); the port 1-5 digits. It
// allocates nothing.
func parseOrigin(v []byte) (scheme, host, port []byte, ok bool) {
	i := indexSchemeEnd(v)
	if i <= 0 {
		return nil, nil, nil, false
	}
	scheme, rest := v[:i], v[i+3:]
	if len(rest) > 0 && rest[0] == '[' {
		end := indexByte(rest, ']')
		if end < 0 || !validIPv6(rest[1:end]) {
			return nil, nil, nil, false
		}
		host, rest = rest[:end+1], rest[end+1:]
	} else {
		end := indexByte(rest, ':')
		if end < 0 {
			end = len(rest)
		}
		host, rest = rest[:end], rest[end:]
		if !validHost(host) {
			return nil, nil, nil, false
		}
	}
	if len(rest) > 0 {
		if rest[0] != ':' || !validPort(rest[1:]) {
			return nil, nil, nil, false
		}
		port = rest[1:]
	}
	return scheme, host, port, true
}

// indexSchemeEnd returns the index of "://" after a valid scheme, or -1.
func indexSchemeEnd(v []byte) int {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isAlpha(c) || i > 0 && (isDigit(c) || c == '+' || c == '-' || c == '.'):
		case c == ':' && i > 0 && len(v) >= i+3 && v[i+1] == '/' && v[i+2] == '/':
			return i
		default:
			return -1
		}
	}
	return -1
}

func validHost(h []byte) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case isAlpha(c) || isDigit(c):
			label++
		case c == '-':
			if label == 0 {
				return false
			}
			label++
		case c == '.':
			if label == 0 || h[i-1] == '-' {
				return false
			}
			label = 0
		default:
			return false
		}
		if label > 63 {
			return false
		}
	}
	return label > 0 && h[len(h)-1] != '-'
}

func validIPv6(s []byte) bool {
	if len(s) < 2 || len(s) > 45 {
		return false
	}
	colon := false
	for _, c := range s {
		switch {
		case isDigit(c), c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '.':
		case c == ':':
			colon = true
		default:
			return false
		}
	}
	return colon
}

func validPort(p []byte) bool {
	if len(p) == 0 || len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for _, c := range p {
		if !isDigit(c) {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

// equalFold compares a with lower, which is lowercase, ignoring ASCII case.
func equalFold(a, lower []byte) bool {
	if len(a) != len(lower) {
		return false
	}
	for i := range a {
		c := a[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
