package ratelimit

import (
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/limiter"
)

// concurrency is a route's cap on requests in flight: one limiter for the
// route (with the optional queue), or one per key.
type concurrency struct {
	route *limiter.Concurrency
	keyed *limiter.KeyedConcurrency
	key   key
	// err answers a request over the cap, with concurrency.status.
	err *core.Error
}

func newConcurrency(c *config.Concurrency) (*concurrency, error) {
	cc := &concurrency{err: &core.Error{Status: c.Status, Err: errConcurrencyExhausted}}
	var err error
	if c.Key == "" {
		cc.route, err = limiter.NewConcurrency(c.Max, c.Queue, c.Wait.D())
	} else {
		if cc.key, err = compileKey(c.Key); err != nil {
			return nil, prefixErr(".key: ", err)
		}
		cc.keyed, err = limiter.NewKeyedConcurrency(c.Max)
	}
	if err != nil {
		return nil, prefixErr(": ", err)
	}
	return cc, nil
}

// acquire takes a slot for the request; hash is the key's hash for
// release (0 for the route-wide cap).
func (c *concurrency) acquire(ctx *fasthttp.RequestCtx, r *core.Request, scratch []byte) (hash uint64, ok bool) {
	if c.route != nil {
		return 0, c.route.Acquire()
	}
	hash = xxhash.Sum64(c.key.append(scratch, ctx, r))
	return hash, c.keyed.AcquireHash(hash)
}

// release frees the slot acquire took; st holds the key's hash.
func (c *concurrency) release(st *state) {
	if c.route != nil {
		c.route.Release()
		return
	}
	if st != nil {
		c.keyed.ReleaseHash(st.hash)
	}
}

// state is what Filter leaves on the request for After: the decision whose
// headers go on the response and the concurrency key's hash. Pooled; set on
// the filter's core.Request state slot (a pointer in an interface: no
// allocation).
type state struct {
	limit *limit // the limit whose headers are set; nil: none
	d     limiter.Decision
	hash  uint64
}

var statePool = sync.Pool{New: func() any { return new(state) }}

func acquireState() *state { return statePool.Get().(*state) }

func releaseState(st *state) {
	*st = state{}
	statePool.Put(st)
}

type wrapped struct {
	prefix string
	err    error
}

func (w *wrapped) Error() string { return w.prefix + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func prefixErr(prefix string, err error) error { return &wrapped{prefix, err} }
