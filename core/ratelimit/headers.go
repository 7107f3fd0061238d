package ratelimit

import (
	"strconv"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/limiter"
)

// Response header names. IETF: draft-ietf-httpapi-ratelimit-headers (-09,
// -10): RateLimit-Policy lists the quota policies as Structured Field
// items `"name";q=QUOTA;w=WINDOW`, RateLimit the current state of one
// `"name";r=REMAINING;t=SECONDS-UNTIL-RESET`.
const (
	hdrPolicy         = "RateLimit-Policy"
	hdrRateLimit      = "RateLimit"
	hdrLegacyLimit    = "X-RateLimit-Limit"
	hdrLegacyRemain   = "X-RateLimit-Remaining"
	hdrLegacyReset    = "X-RateLimit-Reset"
	hdrRetryAfter     = "Retry-After"
	headerValueScrach = 64
)

// appendPolicy appends the RateLimit-Policy value of the limits with IETF
// headers: `"100-per-1s";q=100;w=1, "1000-per-1h";q=1000;w=3600`. The
// quota q is the burst and w the time an empty bucket takes to refill to
// it (GCRA admits q requests at once, then one per w/q seconds).
func appendPolicy(dst []byte, limits []limit) []byte {
	for i := range limits {
		l := &limits[i]
		if !l.ietf {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, '"')
		dst = append(dst, l.name...) // names are [A-Za-z0-9_.-]: no escaping
		dst = append(dst, `";q=`...)
		dst = strconv.AppendInt(dst, int64(l.quota), 10)
		dst = append(dst, ";w="...)
		dst = strconv.AppendInt(dst, l.window, 10)
	}
	return dst
}

// appendRateLimit appends the RateLimit value of l for d:
// `"100-per-1s";r=42;t=1`.
func appendRateLimit(dst []byte, l *limit, d limiter.Decision) []byte {
	dst = append(dst, '"')
	dst = append(dst, l.name...)
	dst = append(dst, `";r=`...)
	dst = strconv.AppendInt(dst, int64(d.Remaining), 10)
	dst = append(dst, ";t="...)
	return strconv.AppendInt(dst, d.ResetSeconds(), 10)
}

// writeHeaders sets l's headers for d on h: the IETF pair and/or the
// legacy triple, per the limit's headers setting.
func (f *Filter) writeHeaders(h *fasthttp.ResponseHeader, l *limit, d limiter.Decision, denied bool) {
	var buf [headerValueScrach]byte
	if l.ietf {
		h.SetBytesV(hdrPolicy, f.policy)
		h.SetBytesV(hdrRateLimit, appendRateLimit(buf[:0], l, d))
	}
	if l.legacy {
		h.SetBytesV(hdrLegacyLimit, strconv.AppendInt(buf[:0], int64(d.Limit), 10))
		h.SetBytesV(hdrLegacyRemain, strconv.AppendInt(buf[:0], int64(d.Remaining), 10))
		h.SetBytesV(hdrLegacyReset, strconv.AppendInt(buf[:0], d.ResetSeconds(), 10))
	}
}

// deny answers 429 for limit l's decision d.
func (f *Filter) deny(ctx *fasthttp.RequestCtx, r *core.Request, l *limit, d limiter.Decision) {
	resp := &ctx.Response
	core.WriteError(resp, errRateLimited, r.RequestID)
	var buf [20]byte
	resp.Header.SetBytesV(hdrRetryAfter, strconv.AppendInt(buf[:0], d.RetryAfterSeconds(), 10))
	f.writeHeaders(&resp.Header, l, d, true)
	f.rejected.Inc()
}

// throttle answers the concurrency cap's status (503 or 429).
func (f *Filter) throttle(ctx *fasthttp.RequestCtx, r *core.Request) {
	resp := &ctx.Response
	core.WriteError(resp, f.conc.err, r.RequestID)
	resp.Header.Set(hdrRetryAfter, concurrencyRetryAfter)
	f.throttled.Inc()
}
