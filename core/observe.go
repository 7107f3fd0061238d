package core

import (
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core/accesslog"
)

// observe reports a finished request to the metrics and, when sampled, to
// the access log. It takes the request's one time.Now(); the start is
// fasthttp's ctx.Time().
func (s *Snapshot) observe(x *exchange) {
	ctx := x.ctx
	end := time.Now()
	status := ctx.Response.StatusCode()
	rm := s.unmatched
	if x.route != nil {
		rm = x.route.metrics
	}
	rm.observe(x.method, status, end.Sub(ctx.Time()).Seconds())
	x.call.Observe(end)
	if x.logged {
		s.logAccess(x, status, end)
	}
}

var (
	logTime     = []byte(`{"time":`)
	logID       = []byte(`,"request_id":`)
	logClient   = []byte(`,"client_ip":"`)
	logMethod   = []byte(`","method":`)
	logHost     = []byte(`,"host":`)
	logPath     = []byte(`,"path":`)
	logRoute    = []byte(`,"route":"`)
	logUpstream = []byte(`","upstream":"`)
	logTarget   = []byte(`","target":"`)
	logStatus   = []byte(`","status":`)
	logIn       = []byte(`,"bytes_in":`)
	logOut      = []byte(`,"bytes_out":`)
	logDur      = []byte(`,"duration_ms":`)
	logUpDur    = []byte(`,"upstream_duration_ms":`)
	logUA       = []byte(`,"user_agent":`)
	logConsumer = []byte(`,"consumer":`)
)

// logAccess formats the access log line of x and hands it to the writer
// without waiting. Header values that carry credentials (Authorization,
// Cookie, API keys) are not among the fields, so they are never written.
func (s *Snapshot) logAccess(x *exchange, status int, end time.Time) {
	ctx := x.ctx
	ln := s.accessLog.Acquire()
	if ln == nil {
		return // the buffer is full: dropped and counted
	}
	b := append(ln.B, logTime...)
	b = append(b, '"')
	b = ctx.Time().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = append(b, logID...)
	b = accesslog.AppendString(b, x.requestID)
	b = append(b, logClient...)
	b = x.clientIP.AppendTo(b)
	b = append(b, logMethod...)
	b = accesslog.AppendString(b, ctx.Method())
	b = append(b, logHost...)
	b = accesslog.AppendString(b, x.host)
	b = append(b, logPath...)
	b = accesslog.AppendString(b, x.path)
	b = append(b, logRoute...)
	if x.route != nil {
		b = append(b, x.route.name...)
	}
	b = append(b, logUpstream...)
	if x.call.up != nil {
		b = append(b, x.call.up.name...)
	}
	b = append(b, logTarget...)
	b = append(b, x.call.Target()...)
	b = append(b, logStatus...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, logIn...)
	b = strconv.AppendInt(b, requestBytes(&ctx.Request), 10)
	b = append(b, logOut...)
	b = strconv.AppendInt(b, x.responseBytes(), 10)
	b = append(b, logDur...)
	b = appendMillis(b, end.Sub(ctx.Time()))
	b = append(b, logUpDur...)
	if x.call.target != nil {
		b = appendMillis(b, end.Sub(x.call.attemptStart))
	} else {
		b = append(b, "null"...)
	}
	b = append(b, logUA...)
	b = accesslog.AppendString(b, ctx.Request.Header.UserAgent())
	if x.consumer != nil {
		b = append(b, logConsumer...)
		b = accesslog.AppendString(b, s2b(x.consumer.Name))
	}
	b = append(b, x.logExtra...)
	b = append(b, '}', '\n')
	ln.B = b
	s.accessLog.Submit(ln)
}

// requestBytes is the request body size: its length, or the announced
// Content-Length of a streamed body.
func requestBytes(req *fasthttp.Request) int64 {
	if req.IsBodyStream() {
		return int64(max(req.Header.ContentLength(), 0))
	}
	return int64(len(req.Body()))
}

// responseBytes is the response body size: its length, or the bytes of a
// streamed body written (the request completes when its stream closes).
func (x *exchange) responseBytes() int64 {
	resp := &x.ctx.Response
	if resp.IsBodyStream() {
		return x.bytesOut
	}
	return int64(len(resp.Body()))
}

// appendMillis appends d in milliseconds with microsecond precision.
func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 3, 64)
}
