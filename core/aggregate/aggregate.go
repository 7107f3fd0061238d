package aggregate

import (
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"fastgate/core"
)

// Terminal answers an aggregate route: it calls the route's backends,
// those without a {respN...} reference at once and the others when what
// they refer to has answered, and merges their JSON responses.
//
// The calls of a request run on the request's goroutine (one per wave of
// ready backends) and on the terminal's workers, long-lived goroutines
// started on demand up to GOMAXPROCS*64 and stopped by Close; every call
// has ended when Serve returns. Terminal is immutable once built and safe
// for concurrent use.
type Terminal struct {
	backends []*backend
	status   int
	timeout  time.Duration
	maxBody  int

	// hasRoot: a backend merges into the root object; else sorted are the
	// backends in the order of their groups.
	hasRoot bool
	sorted  []int

	pool    pool
	fanouts sync.Pool
}

var _ core.Terminal = (*Terminal)(nil)

// backend is one compiled backend of the route.
type backend struct {
	index    int
	up       *core.Upstream
	parts    []part
	deps     uint64 // bit N: the path refers to backend N's response
	timeout  time.Duration
	headers  [][]byte // client request headers copied to the call
	group    string
	label    []byte // the group, or backends[i]: X-Fastgate-Failed
	key      []byte // the group as a JSON object key: "group":
	failures *metrics.Counter

	target     []string
	allow      [][]string
	deny       [][]string
	rename     []rename
	root       bool // no group: merged into the root object
	collection bool
	required   bool
	// decode: the body is decoded (it is transformed, merged into the
	// root or referred to); otherwise it is checked and placed as it is.
	decode bool
	// referenced: a later backend's path reads the decoded response.
	referenced bool

	// errPrefix and the texts below are the JSON-safe parts of the
	// backend's error messages, built once.
	errPrefix string
	noTarget  string
}

// part is a piece of a backend's path: literal text, route parameter
// param, or field of backend ref's response.
type part struct {
	literal  []byte
	queryArg []byte // the client's query argument of a {query.NAME} part
	param    int
	ref      int
	field    []string
	query    bool   // escaped for the query, not the path
	missing  string // the failure text when the field is unusable
}

type rename struct {
	from []string
	to   string
}

// Failure texts of a backend call (after the backend's errPrefix).
const (
	reasonNotJSON    = "the response is not JSON"
	reasonNotObject  = "the response is not a JSON object, which a backend without a group must answer"
	reasonNotArray   = "the response is not a JSON array (collection: true)"
	reasonOpsNoObj   = "the response is not a JSON object, which allow, deny and rename apply to"
	reasonTooLarge   = "the response body exceeds max_body"
	reasonBodyRead   = "the response body could not be read"
	reasonDependency = "a backend its path refers to ({respN...}) failed"
)

// Headers of a partial response.
const (
	hdrPartial = "X-Fastgate-Partial"
	hdrFailed  = "X-Fastgate-Failed"
)

var (
	strGET         = []byte(fasthttp.MethodGet)
	strContentJSON = []byte("application/json")
	strXRequestID  = []byte("X-Request-ID")
	strXFF         = []byte("X-Forwarded-For")
	strXRealIP     = []byte("X-Real-Ip")
	strXFProto     = []byte("X-Forwarded-Proto")
	strXFHost      = []byte("X-Forwarded-Host")
	strHTTP        = []byte("http")
	strHTTPS       = []byte("https")
	strListSep     = []byte(", ")
)

// Serve implements core.Terminal.
func (t *Terminal) Serve(ctx *fasthttp.RequestCtx, r *core.Request) {
	f := t.acquire()
	f.ctx, f.r = ctx, r
	f.deadline = ctx.Time().Add(t.timeout)
	f.run(ctx.Time())
	f.respond()
	t.release(f)
}

// fanout is the state of one request's calls. It is pooled per terminal;
// its slots (one per backend) keep their fasthttp request, response and
// buffers across requests.
type fanout struct {
	t        *Terminal
	ctx      *fasthttp.RequestCtx
	r        *core.Request
	deadline time.Time
	slots    []slot
	// done receives the index of each call a worker finished; its
	// capacity is the number of backends, so a worker never waits on it.
	done    chan int
	running int    // calls on workers not yet received from done
	started uint64 // bit i: backend i was started (or failed unstarted)
	settled uint64 // bit i: backend i's outcome is known
	failed  uint64 // bit i: backend i failed
	buf     []byte // scratch: a field's text, a header value
	out     []byte // the merged body
}

func (t *Terminal) acquire() *fanout {
	if f, ok := t.fanouts.Get().(*fanout); ok {
		return f
	}
	f := &fanout{t: t, slots: make([]slot, len(t.backends)), done: make(chan int, len(t.backends))}
	for i := range f.slots {
		f.slots[i].f, f.slots[i].b = f, t.backends[i]
	}
	return f
}

func (t *Terminal) release(f *fanout) {
	for i := range f.slots {
		f.slots[i].reset()
	}
	f.ctx, f.r = nil, nil
	f.started, f.settled, f.failed = 0, 0, 0
	f.buf = f.buf[:0]
	if cap(f.out) > maxPooledBuf {
		f.out = nil
	}
	t.fanouts.Put(f)
}

// run makes every call and returns when all have ended. now is the
// request's clock reading; dependent calls read the clock when they start.
func (f *fanout) run(now time.Time) {
	all := uint64(1)<<uint(len(f.slots)) - 1
	for f.settled != all {
		inline := f.launch(now)
		now = time.Time{}
		if inline != nil {
			// The request's goroutine makes one call of each wave itself:
			// a route with one backend, or a chain, needs no worker.
			inline.c.Client = f.r
			inline.call()
			f.settle(inline)
			continue
		}
		if f.running == 0 {
			return // unreachable: every unsettled backend waits on a running one
		}
		i := <-f.done
		f.running--
		f.settle(&f.slots[i])
	}
}

// launch starts the backends whose references have settled: those with
// a failed reference fail unstarted, the others go to the workers but one,
// returned for the caller to run. now is zero when the clock must be read.
func (f *fanout) launch(now time.Time) *slot {
	var inline *slot
	for changed := true; changed; {
		changed = false
		for i := range f.slots {
			s := &f.slots[i]
			bit := uint64(1) << uint(i)
			if f.started&bit != 0 || s.b.deps&^f.settled != 0 {
				continue
			}
			f.started |= bit
			if s.b.deps&f.failed != 0 {
				s.reason = reasonDependency
				f.settle(s)
				changed = true
				continue
			}
			if now.IsZero() {
				now = time.Now()
			}
			if !s.prepare(now) {
				f.settle(s)
				changed = true
				continue
			}
			if inline != nil {
				f.dispatch(inline)
			}
			inline = s
		}
	}
	return inline
}

// dispatch hands s to a worker. Its call is cancelled with the client
// (Call.Client) like the request goroutine's own.
func (f *fanout) dispatch(s *slot) {
	s.c.Client = f.r
	f.running++
	f.t.pool.dispatch(s)
}

// settle records s's outcome.
func (f *fanout) settle(s *slot) {
	bit := uint64(1) << uint(s.b.index)
	f.settled |= bit
	if s.failed() {
		f.failed |= bit
		s.b.failures.Inc()
	}
}

// respond writes the merged response, or the error of the first failed
// required backend.
func (f *fanout) respond() {
	resp := &f.ctx.Response
	for i := range f.slots {
		if s := &f.slots[i]; s.b.required && s.failed() {
			core.WriteError(resp, s.error(), f.r.RequestID)
			return
		}
	}
	var err error
	if f.out, err = f.appendMerged(f.out[:0]); err != nil {
		core.WriteError(resp, errEncode, f.r.RequestID)
		return
	}
	resp.Reset()
	resp.SetStatusCode(f.t.status)
	resp.Header.SetContentTypeBytes(strContentJSON)
	resp.Header.SetBytesKV(strXRequestID, f.r.RequestID)
	if f.failed != 0 {
		resp.Header.Set(hdrPartial, "true")
		f.buf = f.buf[:0]
		for i := range f.slots {
			if f.failed&(1<<uint(i)) == 0 {
				continue
			}
			if len(f.buf) > 0 {
				f.buf = append(f.buf, strListSep...)
			}
			f.buf = append(f.buf, f.slots[i].b.label...)
		}
		resp.Header.SetBytesV(hdrFailed, f.buf)
	}
	resp.SetBody(f.out)
}

var errEncode = &core.Error{Status: fasthttp.StatusInternalServerError, Err: errText("aggregate: the merged response could not be encoded as JSON")}

type errText string

func (e errText) Error() string { return string(e) }

// error returns the gateway error a failed required backend answers with:
// 504 when its call timed out, else 502.
func (s *slot) error() *core.Error {
	status := fasthttp.StatusBadGateway
	reason := s.reason
	switch {
	case s.err != nil:
		if s.err.Status == fasthttp.StatusGatewayTimeout || s.err.Status == core.StatusClientClosedRequest {
			status = s.err.Status
		}
		reason = s.err.Error()
	case s.status != 0:
		reason = "answered status " + strconv.Itoa(s.status)
	}
	return &core.Error{Status: status, Err: errText(s.b.errPrefix + reason)}
}
