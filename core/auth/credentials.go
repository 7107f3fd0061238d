package auth

import (
	"bytes"
	"encoding/base64"
	"fastgate/core/hdr"

	"github.com/valyala/fasthttp"
)

// maxBasic is the longest decoded "user:password" accepted; a longer one
// is an invalid credential, never a larger buffer.
const maxBasic = 1 << 10

// basicBuf holds a decoded basic credential: maxBasic bytes and the 2 that
// base64 padding may make DecodedLen overestimate.
type basicBuf [maxBasic + 2]byte

// outcome is what one method made of a request's credentials.
type outcome uint8

const (
	notTried outcome = iota
	succeeded
	missing // no credential of the method in the request
	invalid // a credential is present but bad
)

var (
	strAuthorization = "Authorization"
	schemeBasic      = []byte("basic ")
	schemeBearer     = []byte("bearer ")
)

// credential returns the value of an Authorization header in scheme
// (lower case, with its trailing space; matched case-insensitively),
// without surrounding spaces, or nil when h is another scheme or empty.
func credential(h, scheme []byte) []byte {
	if len(h) < len(scheme) || !asciiEqualFold(h[:len(scheme)], scheme) {
		return nil
	}
	v := bytes.Trim(h[len(scheme):], " \t")
	if len(v) == 0 {
		return nil
	}
	return v
}

// bearer returns the token of "Authorization: Bearer <token>", or nil.
func bearer(h []byte) []byte { return credential(h, schemeBearer) }

// parseBasic decodes the credential of "Authorization: Basic <base64>"
// (RFC 7617) into buf and splits it at the first ':'. It reports missing
// when h is not a Basic credential, and invalid when its payload is not
// base64 of "user:password" or decodes to more than maxBasic bytes. user
// and pass point into buf.
func parseBasic(h []byte, buf *basicBuf) (user, pass []byte, o outcome) {
	v := credential(h, schemeBasic)
	if v == nil {
		if len(h) >= len(schemeBasic)-1 && asciiEqualFold(bytes.TrimRight(h, " \t"), schemeBasic[:len(schemeBasic)-1]) {
			return nil, nil, invalid // "Basic" with nothing after it
		}
		return nil, nil, missing
	}
	if base64.StdEncoding.DecodedLen(len(v)) > len(buf) {
		return nil, nil, invalid
	}
	n, err := base64.StdEncoding.Decode(buf[:], v)
	if err != nil || n > maxBasic {
		return nil, nil, invalid
	}
	d := buf[:n]
	i := bytes.IndexByte(d, ':')
	if i < 0 {
		return nil, nil, invalid
	}
	return d[:i], d[i+1:], succeeded
}

// asciiEqualFold reports whether a equals lower, which is lower-case
// ASCII, ignoring the case of a's letters.
func asciiEqualFold(a, lower []byte) bool {
	if len(a) != len(lower) {
		return false
	}
	for i, c := range a {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// keySource is where requests carry API keys, compiled from api_key.
type keySource struct {
	header string
	query  string // "": not read
	bearer bool
}

// extract returns the request's API key: the header's, else the query
// argument's, else the bearer token's; nil when there is none. The slice
// is valid while the request is unchanged.
func (s *keySource) extract(ctx *fasthttp.RequestCtx) []byte {
	if k := ctx.Request.Header.Peek(s.header); len(k) > 0 {
		return k
	}
	if s.query != "" {
		if k := ctx.QueryArgs().Peek(s.query); len(k) > 0 {
			return k
		}
	}
	if s.bearer {
		return bearer(ctx.Request.Header.Peek(strAuthorization))
	}
	return nil
}

// strip removes every place the key could be, so that none reaches the
// upstream.
func (s *keySource) strip(ctx *fasthttp.RequestCtx) {
	hdr.DelRequest(&ctx.Request.Header, s.header)
	if s.query != "" && ctx.QueryArgs().Has(s.query) {
		deleteQueryArg(ctx, s.query)
	}
	if s.bearer {
		stripAuthorization(ctx, schemeBearer)
	}
}

// stripAuthorization removes the Authorization header when it is a
// credential of scheme.
func stripAuthorization(ctx *fasthttp.RequestCtx, scheme []byte) {
	h := &ctx.Request.Header
	if v := h.Peek(strAuthorization); credential(v, scheme) != nil || asciiEqualFold(bytes.TrimRight(v, " \t"), scheme[:len(scheme)-1]) {
		hdr.DelRequest(h, strAuthorization)
	}
}

// deleteQueryArg removes query argument name (which may be gone from the
// parsed arguments already) from the request URI sent upstream. The proxy sends the URI's query string, which deleting from
// its parsed Args alone does not change: it is written anew.
func deleteQueryArg(ctx *fasthttp.RequestCtx, name string) {
	args := ctx.QueryArgs()
	args.Del(name)
	sc := acquireScratch()
	sc.b = args.AppendBytes(sc.b[:0])
	ctx.URI().SetQueryStringBytes(sc.b) // copies
	releaseScratch(sc)
}
