package core

import (
	"fastgate/core/config"
	"fastgate/lb"
	"math/rand/v2"

	"github.com/valyala/fasthttp"
)

// Hash key sources of an upstream.
const (
	hashNone = iota
	hashHeader
	hashCookie
	hashQuery
	hashIP
	hashPath
)

func compileHashKey(h *config.Hash) (kind int, name string) {
	if h.Key == "" {
		return hashNone, ""
	}
	source, name, err := config.ParseHashKey(h.Key)
	if err != nil {
		return hashNone, ""
	}
	switch source {
	case config.HashKeyHeader:
		return hashHeader, name
	case config.HashKeyCookie:
		return hashCookie, name
	case config.HashKeyQuery:
		return hashQuery, name
	case config.HashKeyIP:
		return hashIP, ""
	}
	return hashPath, ""
}

// hashKey returns the balancing key of the request for a hashing upstream
// (0 for the others): the xxhash of the configured header, cookie, query
// argument, client IP or normalized path, read in place. A request without
// the key gets a random one, so keyless requests spread instead of piling
// onto the target of the empty key. It must run before the request URI is
// rewritten (the query and path are the client's).
func (up *Upstream) hashKey(ctx *fasthttp.RequestCtx, x *exchange, path []byte) uint64 {
	var v []byte
	switch up.hashKind {
	case hashNone:
		return 0
	case hashHeader:
		v = ctx.Request.Header.Peek(up.hashName)
	case hashCookie:
		v = ctx.Request.Header.Cookie(up.hashName)
	case hashQuery:
		v = ctx.QueryArgs().Peek(up.hashName)
	case hashIP:
		a := x.clientIP.As16()
		return lb.HashBytes(a[:])
	case hashPath:
		v = path
	}
	if len(v) == 0 {
		return rand.Uint64()
	}
	return lb.HashBytes(v)
}
