package redis

import (
	"fmt"

	"github.com/redis/rueidis"

	"fastgate/limiter"
)

// exactScript is GCRA on Redis's clock, in microseconds (Lua numbers are
// doubles: Unix µs fit in 53 bits, Unix ns would not). A denial only reads.
// KEYS[1]: the key's TAT; ARGV: interval µs, tolerance µs.
// Returns {allowed 0|1, reset-after µs, retry-after µs}.
const exactScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tol = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > tol then
  return {0, tat - now, nxt - tol - now}
end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1)
return {1, nxt - now, 0}
`

// Exact is a cluster-wide GCRA limiter decided by Redis on every check. It
// is safe for concurrent use. See the package doc for clocks and failures.
type Exact struct {
	client rueidis.Client
	script *rueidis.Lua
	g      limiter.GCRA
	prefix string
	args   []string // interval µs, tolerance µs
	o      Options
	c      *counters
}

// NewExact returns an Exact limiter named name (part of its Redis keys, so
// unique per limit) for l over client, which the caller keeps and closes.
func NewExact(client rueidis.Client, name string, l limiter.Limit, o Options) (*Exact, error) {
	g, err := checkArgs(client, name, l)
	if err != nil {
		return nil, err
	}
	o.setDefaults()
	iv := g.Interval() / 1000
	return &Exact{
		client: client,
		script: rueidis.NewLuaScript(exactScript),
		// µs everywhere, so that tolerance is an exact multiple of interval
		g:      mustGCRA(iv, g.Burst()),
		prefix: o.Prefix + name + ":e:",
		args:   []string{itoa(iv), itoa(iv * int64(g.Burst()))},
		o:      o,
		c:      newCounters(o, name),
	}, nil
}

// mustGCRA returns the GCRA for burst requests every intervalUS µs.
func mustGCRA(intervalUS int64, burst int) limiter.GCRA {
	g, err := limiter.NewGCRA(limiter.Limit{Rate: 1, Per: timeUS(intervalUS), Burst: burst})
	if err != nil {
		panic(fmt.Sprintf("BUG: limiter/redis: %s", err))
	}
	return g
}

// Allow checks one request for key. It waits one Redis round trip, at most
// Options.Timeout; now (Unix ns) is unused unless Redis fails, since the
// script uses Redis's clock. It allocates (the command), unlike the local
// limiters.
func (e *Exact) Allow(now int64, key []byte) limiter.Decision {
	e.c.checks.Add(1)
	ctx, cancel := withTimeout(e.o.Timeout)
	res := e.script.Exec(ctx, e.client, []string{e.prefix + string(key)}, e.args)
	cancel()
	e.c.roundTrips.Add(1)
	v, err := res.AsIntSlice()
	if err == nil && len(v) != 3 {
		err = fmt.Errorf("limiter/redis: exact script returned %d values; want 3", len(v))
	}
	if err != nil {
		e.c.fail(err)
		return e.failed()
	}
	if v[0] == 1 {
		return e.g.Allowed(v[1] * 1000)
	}
	return e.g.Denied(v[1]*1000, v[2]*1000)
}

func (e *Exact) failed() limiter.Decision {
	if e.o.FailClosed {
		e.c.failClosed.Add(1)
		return e.g.Denied(0, int64(failRetryAfter))
	}
	e.c.failOpen.Add(1)
	return e.g.Allowed(e.g.Interval())
}

// Stats returns the counters.
func (e *Exact) Stats() Stats { return e.c.stats() }

// Close releases nothing today (Exact has no goroutine); it is there so the
// gateway closes both kinds alike. It does not close the client.
func (e *Exact) Close() {}
