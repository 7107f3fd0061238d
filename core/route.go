package core

import (
	"bytes"
	"fmt"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

// route is one compiled route: its match conditions, its filter chain and
// its terminal. Immutable once built.
type route struct {
	name    string
	index   int
	methods methodSet
	headers []condition
	query   []condition
	params  []string // parameter names, in template order
	metrics *routeMetrics

	filters []Filter
	// after and done hold, per filter, its After or Done phase (nil when it
	// has none), asserted once at build; hasAfter and hasDone say whether
	// any has.
	after             []AfterFilter
	done              []DoneFilter
	hasAfter, hasDone bool
	terminal          Terminal
	// preflight: a filter answers CORS preflights, so an OPTIONS preflight
	// matches the route by its Access-Control-Request-Method.
	preflight bool
}

// condition is one header or query equality test.
type condition struct {
	name  string
	value []byte
}

func (r *route) conditionsHold(ctx *fasthttp.RequestCtx) bool {
	for i := range r.headers {
		c := &r.headers[i]
		v := ctx.Request.Header.Peek(c.name)
		if v == nil || !bytes.Equal(v, c.value) {
			return false
		}
	}
	if len(r.query) == 0 {
		return true
	}
	args := ctx.QueryArgs()
	for i := range r.query {
		c := &r.query[i]
		if !args.Has(c.name) || !bytes.Equal(args.Peek(c.name), c.value) {
			return false
		}
	}
	return true
}

// Host policies for the Host header sent upstream.
const (
	hostTarget = iota
	hostPreserve
	hostLiteral
)

// rewrite is a compiled config.Rewrite.
type rewrite struct {
	stripPrefix []byte
	path        []rewritePart // nil: keep the path
	query       []rewritePart
	host        int
	hostLiteral []byte
}

// rewritePart is literal text, or the value of the param-th parameter when
// param >= 0.
type rewritePart struct {
	literal []byte
	param   int
}

func compileRewrite(rw *config.Rewrite, params []string) (rewrite, error) {
	out := rewrite{stripPrefix: []byte(rw.StripPrefix)}
	switch rw.Host {
	case "", "target":
		out.host = hostTarget
	case "preserve":
		out.host = hostPreserve
	default:
		out.host, out.hostLiteral = hostLiteral, []byte(rw.Host)
	}
	if rw.Path == "" {
		return out, nil
	}
	path, query, err := config.ParseRewriteTemplate(rw.Path, params)
	if err != nil {
		return out, err
	}
	out.path = compileParts(path, params)
	out.query = compileParts(query, params)
	if out.path == nil {
		out.path = []rewritePart{{literal: []byte("/"), param: -1}}
	}
	return out, nil
}

func compileParts(parts []config.RewritePart, params []string) []rewritePart {
	var out []rewritePart
	for _, p := range parts {
		if !p.Param {
			out = append(out, rewritePart{literal: []byte(p.Value), param: -1})
			continue
		}
		for i, name := range params {
			if name == p.Value {
				out = append(out, rewritePart{param: i})
			}
		}
	}
	return out
}

// appendRequestURI appends the origin-form request URI sent upstream:
// the rewritten, percent-encoded path and the query string.
func (rw *rewrite) appendRequestURI(dst []byte, x *exchange, query []byte) []byte {
	path := x.path
	switch {
	case rw.path != nil:
		for _, p := range rw.path {
			if p.param < 0 {
				dst = append(dst, p.literal...)
				continue
			}
			dst = AppendQuotedPath(dst, x.param(p.param))
		}
	case len(rw.stripPrefix) > 0 && hasPathPrefix(path, rw.stripPrefix):
		rest := path[len(rw.stripPrefix):]
		if len(rest) == 0 {
			rest = strSlash
		}
		dst = AppendQuotedPath(dst, rest)
	default:
		dst = AppendQuotedPath(dst, path)
	}
	return appendQuery(dst, rw.query, x, query)
}

func appendQuery(dst []byte, parts []rewritePart, x *exchange, query []byte) []byte {
	if len(parts) == 0 && len(query) == 0 {
		return dst
	}
	dst = append(dst, '?')
	for _, p := range parts {
		if p.param < 0 {
			dst = append(dst, p.literal...)
			continue
		}
		dst = appendQuotedQuery(dst, x.param(p.param))
	}
	if len(parts) > 0 && len(query) > 0 {
		dst = append(dst, '&')
	}
	return append(dst, query...)
}

var strSlash = []byte("/")

// hasPathPrefix reports whether prefix is a whole-segment prefix of path.
func hasPathPrefix(path, prefix []byte) bool {
	return bytes.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/')
}

// methodSet is a set of HTTP methods: a bit per standard method, plus a
// short list of other tokens. The zero value is "any method".
type methodSet struct {
	mask  uint16
	other []string
}

// Standard method bits, in the order Allow lists them.
var methodNames = [...]string{
	fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPost, fasthttp.MethodPut,
	fasthttp.MethodPatch, fasthttp.MethodDelete, fasthttp.MethodOptions,
	fasthttp.MethodConnect, fasthttp.MethodTrace,
}

const (
	methodGet     = 1 << 0
	methodHead    = 1 << 1
	methodOptions = 1 << 6
	methodConnect = 1 << 7
	methodTrace   = 1 << 8
)

// methodBit returns the bit of a standard method, 0 for any other.
func methodBit(m []byte) uint16 {
	for i, name := range methodNames {
		if string(m) == name {
			return 1 << i
		}
	}
	return 0
}

func newMethodSet(methods []string) (methodSet, error) {
	var s methodSet
	for _, m := range methods {
		if b := methodBit([]byte(m)); b != 0 {
			s.mask |= b
			continue
		}
		if m == "" {
			return s, fmt.Errorf("empty method")
		}
		s.other = append(s.other, m)
	}
	// GET implies HEAD, as in net/http's ServeMux: a HEAD is a GET without
	// the body.
	if s.mask&methodGet != 0 {
		s.mask |= methodHead
	}
	return s, nil
}

func (s *methodSet) any() bool { return s.mask == 0 && len(s.other) == 0 }

// has reports whether the method (bit, or its text when bit is 0) is in s.
func (s *methodSet) has(bit uint16, method []byte) bool {
	if s.any() {
		return true
	}
	if bit != 0 {
		return s.mask&bit != 0
	}
	for _, m := range s.other {
		if string(method) == m {
			return true
		}
	}
	return false
}

// union adds o's methods to s. It never allocates: of non-standard
// methods, only the first restricting route's are kept (o.other is shared,
// never appended to).
func (s *methodSet) union(o *methodSet) {
	if o.any() {
		return
	}
	s.mask |= o.mask
	if len(o.other) > 0 && len(s.other) == 0 {
		s.other = o.other
	}
}

// appendAllow appends the Allow header value for s.
func (s *methodSet) appendAllow(dst []byte) []byte {
	n := 0
	for i, name := range methodNames {
		if s.mask&(1<<i) == 0 {
			continue
		}
		if n > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, name...)
		n++
	}
	for _, m := range s.other {
		if n > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, m...)
		n++
	}
	return dst
}
