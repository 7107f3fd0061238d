package http1

import (
	"math"
	"time"
)

// ParseRetryAfter returns the wait a Retry-After value v asks for, counted
// from now (RFC 9110 §10.2.3): delay-seconds, a non-negative decimal
// integer, or an HTTP-date, of which a past one waits 0. ok is false when
// v, OWS trimmed, is empty or neither form. A wait beyond time.Duration's
// range is capped at its maximum (about 292 years).
//
// Dates are parsed as net/http's ParseTime does: IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT"), then the obsolete RFC 850 and ANSI C
// forms, which recipients must accept (RFC 9110 §5.6.7); this avoids
// linking net/http into the gateway. The seconds form allocates nothing;
// the date form may allocate.
func ParseRetryAfter(v []byte, now time.Time) (time.Duration, bool) {
	v = trimOWSRight(trimOWSLeft(v))
	switch {
	case len(v) == 0:
		return 0, false
	case isDigit(v[0]):
		return parseDelaySeconds(v) // a date starts with a day name
	}
	t, ok := parseHTTPDate(string(v))
	if !ok {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// maxDelaySeconds is the most whole seconds a time.Duration holds.
const maxDelaySeconds = math.MaxInt64 / int64(time.Second)

// parseDelaySeconds parses digits as seconds, capped at the largest
// time.Duration.
func parseDelaySeconds(v []byte) (time.Duration, bool) {
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		if n <= maxDelaySeconds {
			n = n*10 + int64(c-'0') // at most ~9.2e10: no overflow
		}
	}
	if n > maxDelaySeconds {
		return math.MaxInt64, true
	}
	return time.Duration(n) * time.Second, true
}

// httpDateLayouts are net/http.ParseTime's layouts, in its order:
// http.TimeFormat (IMF-fixdate), time.RFC850, time.ANSIC.
var httpDateLayouts = [...]string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	time.RFC850,
	time.ANSIC,
}

func parseHTTPDate(s string) (time.Time, bool) {
	for _, layout := range httpDateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
