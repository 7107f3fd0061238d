package cors

import (
	"github.com/valyala/fasthttp"

	"fastgate/core"
)

// Header names and values the filter reads and writes.
const (
	hdrOrigin               = "Origin"
	hdrVary                 = "Vary"
	hdrRequestMethod        = "Access-Control-Request-Method"
	hdrRequestHeaders       = "Access-Control-Request-Headers"
	hdrRequestPrivate       = "Access-Control-Request-Private-Network"
	hdrAllowOrigin          = "Access-Control-Allow-Origin"
	hdrAllowMethods         = "Access-Control-Allow-Methods"
	hdrAllowHeaders         = "Access-Control-Allow-Headers"
	hdrAllowCredentials     = "Access-Control-Allow-Credentials"
	hdrAllowPrivateNetwork  = "Access-Control-Allow-Private-Network"
	hdrExposeHeaders        = "Access-Control-Expose-Headers"
	hdrMaxAge               = "Access-Control-Max-Age"
	preflightVary           = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	valueTrue               = "true"
	valueStar               = "*"
	maxRequestedHeaderNames = 64
)

var (
	_ core.AfterFilter = (*Filter)(nil)

	strOptions = []byte(fasthttp.MethodOptions)
)

// Filter answers a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) itself, always stopping the chain; any
// other request goes on.
func (f *Filter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	h := &ctx.Request.Header
	if string(h.Method()) != string(strOptions) {
		return true
	}
	method := h.Peek(hdrRequestMethod)
	if len(method) == 0 {
		return true
	}
	origin := h.Peek(hdrOrigin)
	if len(origin) == 0 {
		return true
	}
	if e := f.checkPreflight(h, origin, method); e != nil {
		f.rejected.Inc()
		r.Fail(ctx, e)
		return false
	}
	f.answerPreflight(ctx, origin, method)
	return false
}

// checkPreflight returns why the preflight is refused, or nil.
func (f *Filter) checkPreflight(h *fasthttp.RequestHeader, origin, method []byte) *core.Error {
	if !f.OriginAllowed(origin) {
		return errOrigin
	}
	if !f.anyMethod && !containsExact(f.methods, method) {
		return errMethod
	}
	if !f.headersAllowed(h.Peek(hdrRequestHeaders)) {
		return errHeaders
	}
	return nil
}

// headersAllowed reports whether every name of Access-Control-Request-
// Headers v is allowed; a malformed list never is.
func (f *Filter) headersAllowed(v []byte) bool {
	for n := 0; len(v) > 0; n++ {
		var name []byte
		name, v = nextToken(v)
		if n == maxRequestedHeaderNames || name == nil {
			return false
		}
		if len(name) > 0 && !f.reflectHeaders && !f.anyHeader && !containsFold(f.headers, name) {
			return false
		}
	}
	return true
}

// answerPreflight writes the 204 of an allowed preflight.
func (f *Filter) answerPreflight(ctx *fasthttp.RequestCtx, origin, method []byte) {
	req := &ctx.Request.Header
	resp := &ctx.Response
	resp.SetStatusCode(fasthttp.StatusNoContent)
	h := &resp.Header
	f.setAllowOrigin(h, origin)
	switch {
	case !f.anyMethod:
		h.SetBytesV(hdrAllowMethods, f.methodsValue)
	case f.credentials:
		// "*" is literal with credentials (Fetch): name the method.
		h.SetBytesV(hdrAllowMethods, method)
	default:
		h.Set(hdrAllowMethods, valueStar)
	}
	requested := req.Peek(hdrRequestHeaders)
	switch {
	case f.reflectHeaders || f.anyHeader && f.credentials:
		if len(requested) > 0 {
			h.SetBytesV(hdrAllowHeaders, requested)
		}
	default:
		h.SetBytesV(hdrAllowHeaders, f.headersValue)
	}
	if f.maxAgeValue != nil {
		h.SetBytesV(hdrMaxAge, f.maxAgeValue)
	}
	if f.privateNetwork && string(req.Peek(hdrRequestPrivate)) == valueTrue {
		h.Set(hdrAllowPrivateNetwork, valueTrue)
	}
	h.Set(hdrVary, preflightVary)
}

// After adds Origin to Vary on every response of the route, and the CORS
// headers when the request's origin is allowed. A disallowed origin gets
// none: the request was still served, and the browser withholds the answer
// from the page.
func (f *Filter) After(ctx *fasthttp.RequestCtx, r *core.Request) {
	h := &ctx.Response.Header
	addVary(h, hdrOrigin)
	origin := ctx.Request.Header.Peek(hdrOrigin)
	if len(origin) == 0 || !f.OriginAllowed(origin) {
		return
	}
	f.setAllowOrigin(h, origin)
	if f.exposeValue != nil {
		h.SetBytesV(hdrExposeHeaders, f.exposeValue)
	}
}

// setAllowOrigin sets Access-Control-Allow-Origin (and -Credentials): "*"
// for allow_origins "*", else the request's origin.
func (f *Filter) setAllowOrigin(h *fasthttp.ResponseHeader, origin []byte) {
	if f.anyOrigin {
		h.Set(hdrAllowOrigin, valueStar)
		return
	}
	h.SetBytesV(hdrAllowOrigin, origin)
	if f.credentials {
		h.Set(hdrAllowCredentials, valueTrue)
	}
}

// OriginAllowed reports whether the Origin header value o is allowed. The
// literal "null" matches only a "null" entry, never a wildcard.
func (f *Filter) OriginAllowed(o []byte) bool {
	if f.anyOrigin {
		return true
	}
	if string(o) == "null" {
		return f.nullOrigin
	}
	scheme, host, port, ok := parseOrigin(o)
	if !ok {
		return false
	}
	for i := range f.origins {
		if f.origins[i].match(scheme, host, port) {
			return true
		}
	}
	return false
}

// addVary adds token to the response's Vary unless a Vary value already
// lists it or "*": into the one Vary line there is, or as a line of its
// own.
func addVary(h *fasthttp.ResponseHeader, token string) {
	lines := 0
	for k, v := range h.All() {
		if !equalFoldString(k, hdrVary) {
			continue
		}
		if hasToken(v, token) || hasToken(v, valueStar) {
			return
		}
		lines++
	}
	switch lines {
	case 0:
		h.Set(hdrVary, token)
	case 1:
		var scratch [128]byte
		v := append(append(append(scratch[:0], h.Peek(hdrVary)...), ", "...), token...)
		h.SetBytesV(hdrVary, v)
	default:
		h.Add(hdrVary, token)
	}
}

// hasToken reports whether the comma-separated list v has token, ignoring
// case and white space.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v = nextToken(v)
		if equalFoldString(t, token) {
			return true
		}
	}
	return false
}

// nextToken returns the first element of the comma-separated list v,
// trimmed (possibly empty), and the rest; a nil element when it has a byte
// that is not a token byte.
func nextToken(v []byte) (tok, rest []byte) {
	end := indexByte(v, ',')
	if end < 0 {
		tok, rest = v, nil
	} else {
		tok, rest = v[:end], v[end+1:]
	}
	for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
		tok = tok[1:]
	}
	for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
		tok = tok[:len(tok)-1]
	}
	for _, c := range tok {
		if !isTokenByte(c) {
			return nil, rest
		}
	}
	if tok == nil {
		tok = v[:0]
	}
	return tok, rest
}

func isTokenByte(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' ||
		c == '*' || c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~'
}

func containsExact(list [][]byte, v []byte) bool {
	for _, s := range list {
		if string(s) == string(v) {
			return true
		}
	}
	return false
}

func containsFold(list [][]byte, v []byte) bool {
	for _, s := range list {
		if equalFold(v, s) {
			return true
		}
	}
	return false
}

func equalFoldString(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
