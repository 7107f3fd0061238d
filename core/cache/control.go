package cache

// control is a parsed response Cache-Control (RFC 9111 §5.2.2) as far as
// a shared cache acts on it. Durations are whole seconds, -1 when absent.
type control struct {
	maxAge, sMaxAge int64
	// swr and sie are RFC 5861's stale-while-revalidate and
	// stale-if-error.
	swr, sie                                  int64
	noStore, noCache, private, mustRevalidate bool
}

// maxDelta caps delta-seconds: RFC 9111 §1.2.2 says 2^31 when larger.
const maxDelta = 1 << 31

// reset makes c the control of a response without Cache-Control.
func (c *control) reset() {
	*c = control{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1}
}

// parse adds the directives of one Cache-Control field value to c.
// Directive names compare case-insensitively; unknown directives are
// ignored. A malformed max-age or s-maxage counts as 0 (stale, RFC 9111
// §4.2.1); a malformed stale-* is ignored. The qualified forms
// no-cache="f" and private="f" count as the unqualified ones: the cache
// does not store such a response at all rather than strip fields.
func (c *control) parse(v []byte) {
	for len(v) > 0 {
		var d []byte
		d, v = nextDirective(v)
		name, arg := splitDirective(d)
		switch {
		case equalFold(name, "max-age"):
			c.maxAge = deltaSeconds(arg, 0)
		case equalFold(name, "s-maxage"):
			c.sMaxAge = deltaSeconds(arg, 0)
		case equalFold(name, "stale-while-revalidate"):
			c.swr = deltaSeconds(arg, c.swr)
		case equalFold(name, "stale-if-error"):
			c.sie = deltaSeconds(arg, c.sie)
		case equalFold(name, "no-store"):
			c.noStore = true
		case equalFold(name, "no-cache"):
			c.noCache = true
		case equalFold(name, "private"):
			c.private = true
		case equalFold(name, "must-revalidate"), equalFold(name, "proxy-revalidate"):
			c.mustRevalidate = true
		}
	}
}

// nextDirective returns the first comma-separated directive of v, trimmed,
// and the rest. A comma inside a quoted string does not separate.
func nextDirective(v []byte) (d, rest []byte) {
	quoted := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case c == ',' && !quoted:
			return trim(v[:i]), v[i+1:]
		}
	}
	return trim(v), nil
}

// splitDirective splits "name=arg" (arg unquoted), or returns d and nil.
func splitDirective(d []byte) (name, arg []byte) {
	for i, c := range d {
		if c == '=' {
			arg = trim(d[i+1:])
			if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
				arg = arg[1 : len(arg)-1]
			}
			return trim(d[:i]), arg
		}
	}
	return d, nil
}

// deltaSeconds parses delta-seconds, capped at maxDelta; bad when arg is
// not all digits.
func deltaSeconds(arg []byte, bad int64) int64 {
	if len(arg) == 0 {
		return bad
	}
	var n int64
	for _, c := range arg {
		if c < '0' || c > '9' {
			return bad
		}
		if n = n*10 + int64(c-'0'); n > maxDelta {
			n = maxDelta
		}
	}
	return n
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring
// case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
