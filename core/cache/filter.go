package cache

import (
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/hdr"
)

// Filter is a route's response cache. It holds only the route's settings;
// the store is its Builder's. It is safe for concurrent use; a hit (and a
// 304 from the cache) allocates nothing.
type Filter struct {
	b     *Builder
	route string

	ttl, swr, sie int64 // ns
	get, head     bool
	statuses      [10]uint64 // bit set of the stored codes, 0-639
	query         queryMode
	vary          [][]byte // route's vary header names, canonical
	perConsumer   bool
	maxObject     int
	lockTimeout   time.Duration
	keyHeader     bool
	bg            *core.Background

	hits, misses, stales, bypasses, notModified *metrics.Counter
}

var (
	_ core.AfterFilter = (*Filter)(nil)
	_ core.DoneFilter  = (*Filter)(nil)
)

// Response header names and values the filter writes.
var (
	strXCache      = []byte("X-Cache")
	strXCacheKey   = []byte("X-Cache-Key")
	strAge         = []byte("Age")
	strXRequestID  = []byte("X-Request-ID")
	strHit         = []byte("HIT")
	strMiss        = []byte("MISS")
	strStale       = []byte("STALE")
	strBypass      = []byte("BYPASS")
	strIfNoneMatch = []byte("If-None-Match")
	strIfModSince  = []byte("If-Modified-Since")
	strAuth        = []byte("Authorization")
	strCookie      = []byte("Cookie")
)

// bypassed is the state of a request the cache lets through untouched.
var bypassed = new(state)

func newFilter(b *Builder, route string, c *config.Cache) *Filter {
	f := &Filter{
		b: b, route: route,
		ttl: int64(c.TTL), swr: int64(c.StaleWhileRevalidate), sie: int64(c.StaleIfError),
		perConsumer: c.PerConsumer, maxObject: c.MaxObjectSize.Int(),
		lockTimeout: c.LockTimeout.D(), keyHeader: c.KeyHeader,
	}
	for _, m := range c.Methods {
		f.get = f.get || m == fasthttp.MethodGet
		f.head = f.head || m == fasthttp.MethodHead
	}
	for _, s := range c.Statuses {
		if s >= 0 && s < 640 {
			f.statuses[s/64] |= 1 << (s % 64)
		}
	}
	switch c.Query {
	case config.CacheQuerySort:
		f.query = querySort
	case config.CacheQueryIgnore:
		f.query = queryIgnore
	}
	for _, h := range c.Vary {
		f.vary = append(f.vary, canonical(h))
	}
	return f
}

// freshness is what a lookup found.
type freshness uint8

const (
	absent          freshness = iota
	fresh                     // serve it
	staleRevalidate           // serve it and refresh it in the background
	staleIfError              // go upstream; serve it if that fails
)

// Filter answers fresh hits and stale-while-revalidate hits; misses go on
// to the terminal, collapsed per key.
func (f *Filter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	s := f.b.st.Load()
	head := ctx.IsHead()
	if s == nil || !(f.get && ctx.IsGet() || f.head && head) || f.bypass(ctx, r) {
		f.bypasses.Inc()
		r.SetState(bypassed)
		return true
	}
	st := acquireState()
	st.now = f.now(ctx)
	st.head = head
	st.base = f.appendBaseKey(st.base[:0], ctx, r, st)
	switch f.lookup(s, &ctx.Request.Header, st) {
	case fresh:
		f.serve(ctx, r, st, strHit)
		releaseState(st)
		return false
	case staleRevalidate:
		f.serve(ctx, r, st, strStale)
		f.startRefresh(ctx, r, st)
		releaseState(st)
		return false
	}
	r.SetState(st)
	if head {
		return true // a HEAD response has no body to store: no collapsing
	}
	// slow path: a miss. Lead the key's fetch, or wait for its leader.
	st.hash = xxhash.Sum64(st.key)
	fl, lead := f.b.flights.join(st.hash)
	if lead {
		st.fl = fl
		return true
	}
	if f.b.wait(fl, f.lockTimeout) && f.lookup(s, &ctx.Request.Header, st) == fresh {
		r.SetState(nil)
		f.serve(ctx, r, st, strHit)
		releaseState(st)
		return false
	}
	return true
}

// bypass reports whether the request may be personal: it has a consumer
// (unless per_consumer keys by it), an Authorization or a Cookie.
func (f *Filter) bypass(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	if r.Consumer() != nil {
		return !f.perConsumer
	}
	h := &ctx.Request.Header
	return len(h.PeekBytes(strAuth)) > 0 || len(h.PeekBytes(strCookie)) > 0
}

func (f *Filter) now(ctx *fasthttp.RequestCtx) int64 {
	if f.b.opts.Now != nil {
		return f.b.opts.Now().UnixNano()
	}
	return ctx.Time().UnixNano()
}

// lookup reads st.base's entry (through its vary spec) into st.buf and
// st.e, and says how fresh it is.
func (f *Filter) lookup(s *store, h *fasthttp.RequestHeader, st *state) freshness {
	st.staleOK = false
	st.key = append(st.key[:0], st.base...)
	var ok bool
	if st.buf, ok = s.get(st.buf[:0], st.key); !ok {
		return absent
	}
	if st.buf[0] == kindVary {
		st.key = appendVariant(st.key, h, st.buf[1:])
		if st.buf, ok = s.get(st.buf[:0], st.key); !ok {
			return absent
		}
	}
	if !st.e.decode(st.buf) {
		return absent
	}
	switch now := st.now; {
	case now < st.e.fresh:
		return fresh
	case now < st.e.swr:
		return staleRevalidate
	case now < st.e.sie:
		st.staleOK = true
		return staleIfError
	}
	return absent
}

// serve answers from st.e: the stored response, or a 304 when the
// request's validators match it.
func (f *Filter) serve(ctx *fasthttp.RequestCtx, r *core.Request, st *state, xcache []byte) {
	e := &st.e
	resp := &ctx.Response
	resp.Reset()
	notMod := e.status == fasthttp.StatusOK && notModified(&ctx.Request.Header, e.headers)
	if notMod {
		resp.SetStatusCode(fasthttp.StatusNotModified)
		f.notModified.Inc()
	} else {
		resp.SetStatusCode(e.status)
		if string(xcache) == string(strHit) {
			f.hits.Inc()
		} else {
			f.stales.Inc()
		}
	}
	for h := e.headers; ; {
		k, v, rest, ok := nextHeader(h)
		if !ok {
			break
		}
		h = rest
		if !notMod || keptIn304(k) {
			resp.Header.AddBytesKV(k, v)
		}
	}
	st.scratch = strconv.AppendInt(st.scratch[:0], max(0, (st.now-e.born)/int64(time.Second)), 10)
	resp.Header.SetBytesKV(strAge, st.scratch)
	f.writeHeaders(resp, r, st, xcache)
	if !notMod {
		resp.SetBody(e.body)
	}
}

func (f *Filter) writeHeaders(resp *fasthttp.Response, r *core.Request, st *state, xcache []byte) {
	resp.Header.SetBytesKV(strXCache, xcache)
	if f.keyHeader {
		resp.Header.SetBytesKV(strXCacheKey, st.key)
	}
	if len(r.RequestID) > 0 {
		resp.Header.SetBytesKV(strXRequestID, r.RequestID)
	}
}

// After serves the stale copy instead of an upstream error
// (stale-if-error), or stores the response and marks it MISS.
func (f *Filter) After(ctx *fasthttp.RequestCtx, r *core.Request) {
	st, _ := r.State().(*state)
	resp := &ctx.Response
	if st == nil || st == bypassed {
		resp.Header.SetBytesKV(strXCache, strBypass)
		return
	}
	if st.staleOK && isServerError(resp.StatusCode()) {
		f.serve(ctx, r, st, strStale)
		f.finish(st)
		return
	}
	f.misses.Inc()
	if s := f.b.st.Load(); s != nil && !st.head {
		f.store(s, st.now, st, &ctx.Request.Header, resp)
	}
	f.writeHeaders(resp, r, st, strMiss)
	f.finish(st)
}

// Done ends the request's fetch (when After could not) and releases its
// state.
func (f *Filter) Done(ctx *fasthttp.RequestCtx, r *core.Request) {
	st, _ := r.State().(*state)
	if st == nil || st == bypassed {
		return
	}
	f.finish(st)
	releaseState(st)
}

// finish wakes the requests waiting for st's fetch.
func (f *Filter) finish(st *state) {
	if st.fl != nil {
		f.b.flights.finish(st.hash, st.fl)
		st.fl = nil
	}
}

func isServerError(code int) bool {
	return code == fasthttp.StatusInternalServerError || code == fasthttp.StatusBadGateway ||
		code == fasthttp.StatusServiceUnavailable || code == fasthttp.StatusGatewayTimeout
}

// startRefresh refreshes st's stale entry in the background through the
// rest of the route, once per key at a time.
func (f *Filter) startRefresh(ctx *fasthttp.RequestCtx, r *core.Request, st *state) {
	hash := xxhash.Sum64(st.key)
	if !f.b.refresh.start(hash) {
		return
	}
	req := fasthttp.AcquireRequest()
	ctx.Request.CopyTo(req)
	req.Header.SetMethod(fasthttp.MethodGet)
	hdr.DelRequestBytes(&req.Header, strIfNoneMatch)
	hdr.DelRequestBytes(&req.Header, strIfModSince)
	base := append([]byte(nil), st.base...)
	go f.refreshEntry(req, base, hash, r.Consumer(), r.ClientIP)
}

func (f *Filter) refreshEntry(req *fasthttp.Request, base []byte, hash uint64, c *core.Consumer, ip netip.Addr) {
	defer f.b.refresh.end(hash)
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	err := f.bg.Serve(req, resp, c, ip, f.maxObject)
	if c := f.b.refreshes.Load(); c != nil {
		c.Inc()
	}
	if err == nil {
		if s := f.b.st.Load(); s != nil {
			st := acquireState()
			st.base = append(st.base[:0], base...)
			f.store(s, f.b.now().UnixNano(), st, &req.Header, resp)
			releaseState(st)
		}
	} else {
		f.b.log.Warn("cache: background refresh failed; the stale entry is served until its stale_while_revalidate window ends",
			"route", f.route, "key", string(base), "error", err)
	}
	if f.b.opts.OnRefresh != nil {
		f.b.opts.OnRefresh(string(base), err)
	}
}

// state is a request's cache state, pooled.
type state struct {
	base    []byte // the key without response-Vary values
	key     []byte // the entry's key: base or a variant
	buf     []byte // the entry looked up
	enc     []byte // an entry being stored
	scratch []byte
	parts   [][2]int
	e       entry // view of buf
	now     int64
	hash    uint64
	fl      *flight // the fetch this request leads
	staleOK bool    // buf holds an entry to serve on an upstream error
	head    bool
}

// maxPooledBuf bounds the buffers kept in the pool.
const maxPooledBuf = 256 << 10

var statePool = sync.Pool{New: func() any { return new(state) }}

func acquireState() *state { return statePool.Get().(*state) }

func releaseState(st *state) {
	if cap(st.buf) > maxPooledBuf {
		st.buf = nil
	}
	if cap(st.enc) > maxPooledBuf {
		st.enc = nil
	}
	st.e = entry{}
	st.fl, st.staleOK, st.head = nil, false, false
	statePool.Put(st)
}
