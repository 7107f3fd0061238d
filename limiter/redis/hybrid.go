package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/redis/rueidis"

	"fastgate/limiter"
)

// hybridScript charges d admissions to a key's global TAT and returns the
// state. KEYS[1]: hash {t: TAT µs (Redis clock), c: total admissions}.
// ARGV: d, interval µs, ms to keep the key after its TAT (so c survives
// short idle gaps for the node-share estimate). d = 0 only reads.
// Returns {TAT - now in µs, c}.
const hybridScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local d = tonumber(ARGV[1])
local v = redis.call('HMGET', KEYS[1], 't', 'c')
local tat = tonumber(v[1]) or 0
local c = tonumber(v[2]) or 0
if d > 0 then
  if tat < now then tat = now end
  tat = tat + d * tonumber(ARGV[2])
  c = c + d
  redis.call('HSET', KEYS[1], 't', string.format('%d', tat), 'c', string.format('%d', c))
  redis.call('PEXPIRE', KEYS[1], math.ceil((tat - now) / 1000) + tonumber(ARGV[3]))
end
return {tat - now, c}
`

// keepAfterTAT is how long a key stays in Redis after its TAT.
const keepAfterTAT = "10000"

// sweepEvery is the number of syncs between sweeps of idle local keys; a
// key is idle after that many syncs without a check.
const sweepEvery = 20

// Hybrid is a cluster-wide limiter that decides from local state and
// reconciles with Redis in the background (see the package doc for the
// algorithm and its over-admission bound). It is safe for concurrent use.
// Allow never waits on Redis and allocates only for a key it has not seen.
// A goroutine runs from NewHybrid until Close.
type Hybrid struct {
	client   rueidis.Client
	g        limiter.GCRA
	o        Options
	prefix   string
	sha      string // of hybridScript
	iv       string // interval µs
	perShard int
	c        *counters
	degraded atomic.Bool
	nodeEst  atomic.Uint64 // float64 bits: latest node-share estimate

	shards [64]hshard

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// sync goroutine only
	tick  int64
	batch []*hentry
	ds    []int64
}

type hshard struct {
	mu     sync.RWMutex
	m      map[uint64]*hentry
	dmu    sync.Mutex
	dirty  []*hentry // checked since the last sync
	checks atomic.Uint64
	_      [64]byte
}

type hentry struct {
	tat     atomic.Int64 // local TAT, Unix ns of this node's clock
	step    atomic.Int64 // ns charged per local admission: interval * w
	pending atomic.Int64 // admissions not yet sent to Redis
	dirty   atomic.Bool  // queued for the next sync
	key     string       // Redis key

	// sync goroutine only (w is also set once before the entry is published)
	w        float64
	lastC    int64
	seenTick int64
}

// NewHybrid returns a Hybrid limiter named name (part of its Redis keys, so
// unique per limit) for l over client, which the caller keeps and closes.
// Its sync goroutine starts now; stop it with Close.
func NewHybrid(client rueidis.Client, name string, l limiter.Limit, o Options) (*Hybrid, error) {
	g, err := checkArgs(client, name, l)
	if err != nil {
		return nil, err
	}
	o.setDefaults()
	iv := g.Interval() / 1000
	h := &Hybrid{
		client:   client,
		g:        mustGCRA(iv, g.Burst()),
		o:        o,
		prefix:   o.Prefix + name + ":h:",
		iv:       itoa(iv),
		perShard: max(1, o.MaxKeys/64),
		c:        newCounters(o, name),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	sum := sha1.Sum([]byte(hybridScript))
	h.sha = hex.EncodeToString(sum[:])
	h.nodeEst.Store(math.Float64bits(1))
	for i := range h.shards {
		h.shards[i].m = make(map[uint64]*hentry)
	}
	go h.run()
	return h, nil
}

// Allow checks one request for key at now (Unix ns, this node's clock).
func (h *Hybrid) Allow(now int64, key []byte) limiter.Decision {
	hash := xxhash.Sum64(key)
	s := &h.shards[hash>>58]
	s.checks.Add(1)
	s.mu.RLock()
	e := s.m[hash]
	s.mu.RUnlock()
	if e == nil {
		e = h.insert(s, hash, key)
	}
	if !e.dirty.Load() && e.dirty.CompareAndSwap(false, true) {
		s.dmu.Lock()
		s.dirty = append(s.dirty, e)
		s.dmu.Unlock()
	}
	if h.degraded.Load() {
		if h.o.FailClosed {
			h.c.failClosed.Add(1)
			return h.g.Denied(0, int64(failRetryAfter))
		}
		h.c.failOpen.Add(1)
	}
	d := h.g.AllowStep(&e.tat, now, e.step.Load())
	if d.Allowed {
		e.pending.Add(1)
	}
	return d
}

// insert adds key's entry; slow path, once per key.
func (h *Hybrid) insert(s *hshard, hash uint64, key []byte) *hentry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[hash]; e != nil {
		return e
	}
	if len(s.m) >= h.perShard {
		evictOne(s)
	}
	w := math.Float64frombits(h.nodeEst.Load())
	e := &hentry{key: h.prefix + string(key), w: w}
	e.step.Store(int64(float64(h.g.Interval()) * w))
	s.m[hash] = e
	return e
}

// evictOne drops the longest idle (smallest TAT) of up to 8 keys, preferring
// keys with nothing pending, the way Redis approximates LRU. Redis keeps the
// key's global state, so the node only loses its share estimate.
func evictOne(s *hshard) {
	var victim uint64
	best, n := int64(math.MaxInt64), 0
	for hash, e := range s.m {
		t := e.tat.Load()
		if e.pending.Load() > 0 {
			t = math.MaxInt64 - 1
		}
		if t < best || n == 0 {
			victim, best = hash, t
		}
		if n++; n == 8 {
			break
		}
	}
	delete(s.m, victim)
}

// Degraded reports whether the last sync with Redis failed.
func (h *Hybrid) Degraded() bool { return h.degraded.Load() }

// Stats returns the counters.
func (h *Hybrid) Stats() Stats {
	st := h.c.stats()
	for i := range h.shards {
		st.Checks += h.shards[i].checks.Load()
	}
	return st
}

// Close stops the sync goroutine and waits for it. Admissions since the last
// sync are not sent. It does not close the client.
func (h *Hybrid) Close() {
	h.closeOnce.Do(func() { close(h.stop) })
	<-h.done
}

func (h *Hybrid) run() {
	defer close(h.done)
	t := time.NewTicker(h.o.SyncPeriod)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.sync()
			if h.tick%sweepEvery == 0 {
				h.sweep(time.Now().UnixNano())
			}
		}
	}
}

// sync sends the admissions of every key checked since the last sync and
// refreshes their local state, in one pipelined round trip.
func (h *Hybrid) sync() {
	h.tick++
	batch := h.batch[:0]
	for i := range h.shards {
		s := &h.shards[i]
		s.dmu.Lock()
		batch = append(batch, s.dirty...)
		clear(s.dirty)
		s.dirty = s.dirty[:0]
		s.dmu.Unlock()
	}
	h.batch = batch
	if len(batch) == 0 {
		if h.degraded.Load() {
			h.ping() // recover even with no traffic
		}
		return
	}
	ds := h.ds[:0]
	cmds := make(rueidis.Commands, 0, len(batch))
	for _, e := range batch {
		e.dirty.Store(false) // before the swap: a later admission re-queues e
		d := e.pending.Swap(0)
		ds = append(ds, d)
		cmds = append(cmds, h.cmd(e, d, false))
	}
	h.ds = ds
	ctx, cancel := withTimeout(h.o.SyncTimeout)
	defer cancel()
	resps := h.client.DoMulti(ctx, cmds...)
	h.c.roundTrips.Add(1)
	h.retryNoScript(ctx, batch, ds, resps)
	now := time.Now().UnixNano()
	var firstErr error
	for i, r := range resps {
		v, err := r.AsIntSlice()
		if err == nil && len(v) != 2 {
			err = fmt.Errorf("limiter/redis: hybrid script returned %d values; want 2", len(v))
		}
		if err != nil {
			firstErr = cmp(firstErr, err)
			continue // d is dropped: see "Failure" in the package doc
		}
		h.apply(batch[i], ds[i], v[0], v[1], now)
	}
	h.setHealth(firstErr)
	clear(batch)
}

func cmp(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// cmd builds the script call for e: EVALSHA, or EVAL when the script cache
// was flushed (Redis restarted).
func (h *Hybrid) cmd(e *hentry, d int64, eval bool) rueidis.Completed {
	b := h.client.B()
	if eval {
		return b.Eval().Script(hybridScript).Numkeys(1).Key(e.key).Arg(itoa(d), h.iv, keepAfterTAT).Build()
	}
	return b.Evalsha().Sha1(h.sha).Numkeys(1).Key(e.key).Arg(itoa(d), h.iv, keepAfterTAT).Build()
}

// retryNoScript resends with EVAL the calls that failed with NOSCRIPT (they
// did not run), which also reloads the script for the next syncs.
func (h *Hybrid) retryNoScript(ctx context.Context, batch []*hentry, ds []int64, resps []rueidis.RedisResult) {
	var idx []int
	var cmds rueidis.Commands
	for i, r := range resps {
		if rerr, ok := rueidis.IsRedisErr(r.Error()); ok && rerr.IsNoScript() {
			idx = append(idx, i)
			cmds = append(cmds, h.cmd(batch[i], ds[i], true))
		}
	}
	if len(idx) == 0 {
		return
	}
	h.c.roundTrips.Add(1)
	for j, r := range h.client.DoMulti(ctx, cmds...) {
		resps[idx[j]] = r
	}
}

// apply sets e's local state from Redis's reply: ahead = global TAT - Redis
// now (µs), c = total admissions.
func (h *Hybrid) apply(e *hentry, d, ahead, c, now int64) {
	if d > 0 && e.seenTick == h.tick-1 && c >= e.lastC && e.lastC > 0 {
		// share of the cluster's admissions over one sync period
		sample := min(max(float64(c-e.lastC)/float64(d), 1), float64(h.o.MaxNodes))
		e.w = (e.w + sample) / 2
		h.nodeEst.Store(math.Float64bits(e.w))
	}
	e.lastC, e.seenTick = c, h.tick
	step := int64(float64(h.g.Interval()) * e.w)
	e.step.Store(step)
	// plus what this node admitted while the reply was in flight
	e.tat.Store(now + ahead*1000 + e.pending.Load()*step)
}

func (h *Hybrid) ping() {
	ctx, cancel := withTimeout(h.o.Timeout)
	defer cancel()
	h.c.roundTrips.Add(1)
	h.setHealth(h.client.Do(ctx, h.client.B().Ping().Build()).Error())
}

func (h *Hybrid) setHealth(err error) {
	if err != nil {
		h.c.fail(err)
		h.degraded.Store(true)
		return
	}
	if h.degraded.Swap(false) {
		h.c.recovered()
	}
}

// sweep drops local keys not checked for sweepEvery syncs, with nothing
// pending and at full burst locally. Redis keeps their global state.
func (h *Hybrid) sweep(now int64) {
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for hash, e := range s.m {
			if h.tick-e.seenTick > sweepEvery && e.pending.Load() == 0 && !e.dirty.Load() && e.tat.Load() <= now {
				delete(s.m, hash)
			}
		}
		s.mu.Unlock()
	}
}

// Len returns the number of keys held locally.
func (h *Hybrid) Len() int {
	n := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
