package jwt

import (
	"bytes"
	"strings"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
	"fastgate/core/hdr"
)

// source is where requests carry the token, compiled from config from.
type source struct {
	header []byte // nil: not read
	bearer bool   // header is Authorization: "Bearer <token>"
	query  []byte
	cookie []byte
}

func newSource(f config.JWTSource) source {
	if f == (config.JWTSource{}) {
		f.Header = config.DefaultJWTHeader
	}
	var s source
	if f.Header != "" {
		s.header = []byte(f.Header)
		s.bearer = strings.EqualFold(f.Header, "Authorization")
	}
	if f.Query != "" {
		s.query = []byte(f.Query)
	}
	if f.Cookie != "" {
		s.cookie = []byte(f.Cookie)
	}
	return s
}

// Extract returns the request's token from the configured place (the
// first one set and present, in the order header, query argument,
// cookie), or nil when there is none: an Authorization header with
// another scheme than Bearer carries none. The slice points into req and
// is valid while req is unchanged. It allocates nothing.
func (v *Verifier) Extract(req *fasthttp.Request) []byte {
	return v.src.find(req)
}

// Strip removes the token from every configured place that carries one
// (the header, the query argument, the cookie), so that no token is sent
// upstream. An Authorization header with another scheme stays. A query
// token is deleted from the parsed arguments only: the caller writes the
// query string anew from them (core/auth does), since the proxy sends the
// URI's query string.
func (v *Verifier) Strip(req *fasthttp.Request) {
	s := &v.src
	if s.header != nil && len(s.fromHeader(req.Header.PeekBytes(s.header))) > 0 {
		hdr.DelRequestBytes(&req.Header, s.header)
	}
	if s.query != nil && len(req.URI().QueryArgs().PeekBytes(s.query)) > 0 {
		req.URI().QueryArgs().DelBytes(s.query)
	}
	if s.cookie != nil && len(req.Header.CookieBytes(s.cookie)) > 0 {
		req.Header.DelCookieBytes(s.cookie)
	}
}

func (s *source) find(req *fasthttp.Request) []byte {
	if s.header != nil {
		if t := s.fromHeader(req.Header.PeekBytes(s.header)); len(t) > 0 {
			return t
		}
	}
	if s.query != nil {
		if t := req.URI().QueryArgs().PeekBytes(s.query); len(t) > 0 {
			return t
		}
	}
	if s.cookie != nil {
		if t := bytes.TrimSpace(req.Header.CookieBytes(s.cookie)); len(t) > 0 {
			return t
		}
	}
	return nil
}

func (s *source) fromHeader(h []byte) []byte {
	if !s.bearer {
		return bytes.TrimSpace(h)
	}
	return bearer(h)
}

// bearer returns the token of an Authorization value "Bearer <token>"
// (RFC 6750 §2.1; the scheme is case-insensitive), else nil.
func bearer(h []byte) []byte {
	const scheme = "bearer"
	h = bytes.TrimLeft(h, " \t")
	if len(h) <= len(scheme) || h[len(scheme)] != ' ' && h[len(scheme)] != '\t' {
		return nil
	}
	for i := 0; i < len(scheme); i++ {
		if h[i]|0x20 != scheme[i] {
			return nil
		}
	}
	return bytes.TrimSpace(h[len(scheme)+1:])
}
