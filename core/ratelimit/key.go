package ratelimit

import (
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

// key is a compiled rate limit key: which parts of the request identify a
// bucket. It is immutable.
type key struct {
	// route: one bucket for the route; the key is empty.
	route bool
	parts []keyPart
}

type keyPart struct {
	ip       bool
	consumer bool
	header   []byte // canonical header name, for a header part
}

// keySep separates the parts of a combined key. It can't occur in a header
// value (fasthttp rejects CR and LF) nor in an IP, so "a"+"b\nc" and
// "a\nb"+"c" can't collide.
const keySep = '\n'

func compileKey(s string) (key, error) {
	parts, err := config.ParseKey(s)
	if err != nil {
		return key{}, err
	}
	var k key
	for _, p := range parts {
		switch p.Kind {
		case config.KeyRoute:
			k.route = true
		case config.KeyIP:
			k.parts = append(k.parts, keyPart{ip: true})
		case config.KeyConsumer:
			k.parts = append(k.parts, keyPart{consumer: true})
		default:
			k.parts = append(k.parts, keyPart{header: []byte(canonicalHeader(p.Header))})
		}
	}
	return k, nil
}

// append appends the request's key to dst: the client IP (the gateway's
// trusted-proxy-aware one, never the leftmost X-Forwarded-For), the
// consumer's name and header values, separated by keySep. A missing header
// (or consumer) contributes an empty value, so requests without it share
// one bucket per combination.
func (k *key) append(dst []byte, ctx *fasthttp.RequestCtx, r *core.Request) []byte {
	for i := range k.parts {
		p := &k.parts[i]
		if i > 0 {
			dst = append(dst, keySep)
		}
		if p.ip {
			dst = r.ClientIP.AppendTo(dst)
			continue
		}
		if p.consumer {
			if c := r.Consumer(); c != nil {
				dst = append(dst, c.Name...)
			}
			continue
		}
		dst = append(dst, ctx.Request.Header.PeekBytes(p.header)...)
	}
	return dst
}

// canonicalHeader returns fasthttp's normalized form of a header name
// ("x-tenant" -> "X-Tenant").
func canonicalHeader(k string) string {
	b := []byte(k)
	upper := true
	for i, c := range b {
		switch {
		case upper && c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && c >= 'A' && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}
