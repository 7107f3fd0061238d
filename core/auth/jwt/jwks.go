package jwt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"fastgate/core/auth/jwt/jwk"
	"fastgate/core/config"
)

const (
	fetchTimeout = 5 * time.Second
	maxJWKSBytes = 1 << 20
	// logEvery spaces the log lines of a run of failed fetches.
	logEvery = time.Minute
)

// fetcher is the JWKS URL's refresh state. The fields below the line are
// owned by whoever runs step: the refresh goroutine, or a test.
type fetcher struct {
	url                                 string
	client                              *http.Client
	minInterval, defTTL, minTTL, maxTTL time.Duration

	wanted atomic.Bool   // a token had an unknown kid
	kick   chan struct{} // wakes the loop when wanted is set
	stop   chan struct{}
	done   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc

	// ---
	last    time.Time // the last fetch attempt; zero before the first
	next    time.Time // when the set expires or the retry is due
	fails   int       // consecutive failed fetches
	lastLog time.Time
	fetched []*key // the last good set's keys
	started bool

	onFetch func() // test hook: runs after every fetch attempt
}

func newFetcher(cfg *config.JWTIssuer, client *http.Client) *fetcher {
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	r := cfg.JWKSRefresh
	f := &fetcher{
		url:         cfg.JWKSURL,
		client:      client,
		minInterval: durOr(r.MinInterval, config.DefaultJWKSMinInterval),
		defTTL:      durOr(r.DefaultTTL, config.DefaultJWKSDefaultTTL),
		minTTL:      durOr(r.MinTTL, config.DefaultJWKSMinTTL),
		maxTTL:      durOr(r.MaxTTL, config.DefaultJWKSMaxTTL),
		kick:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f
}

func durOr(d, def config.Duration) time.Duration {
	if d <= 0 {
		return def.D()
	}
	return d.D()
}

// Start fetches the JWKS URL once (waiting at most 5s; a failure is
// logged and retried in the background, the static keys keep working)
// and starts the background refresh. Without jwks_url it does nothing.
// Calls after the first do nothing.
func (v *Verifier) Start() {
	f := v.jwks
	if f == nil {
		return
	}
	v.startOnce.Do(func() {
		select {
		case <-f.stop:
			return // closed before started
		default:
		}
		f.started = true
		wait := v.step(v.now())
		go v.loop(wait)
	})
}

// Close stops the background refresh and waits for it to end. It may be
// called more than once, and without Start.
func (v *Verifier) Close() error {
	f := v.jwks
	if f == nil {
		return nil
	}
	v.closeOnce.Do(func() {
		close(f.stop)
		f.cancel()
		// startOnce orders this after a Start in progress.
		v.startOnce.Do(func() {})
		if f.started {
			<-f.done
		}
	})
	return nil
}

// loop runs step whenever it asked to be woken or a token with an
// unknown kid kicked it.
func (v *Verifier) loop(wait time.Duration) {
	f := v.jwks
	defer close(f.done)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		case <-f.kick:
		}
		t.Reset(v.step(v.now()))
	}
}

// wantRefresh asks for an early fetch: a token named a kid the set does
// not have. Many asks before the fetch cost one wake-up.
func (v *Verifier) wantRefresh() {
	f := v.jwks
	if f == nil || f.wanted.Load() || !f.wanted.CompareAndSwap(false, true) {
		return
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// step fetches the set when it has expired, a retry is due, or an
// unknown kid asked for it, never sooner than the gap after the last
// attempt; it returns how long to wait before the next step.
func (v *Verifier) step(now time.Time) time.Duration {
	f := v.jwks
	wanted := f.wanted.Load()
	due := !now.Before(f.next)
	if !due && !wanted {
		return f.next.Sub(now)
	}
	if earliest := f.last.Add(f.gap()); !f.last.IsZero() && now.Before(earliest) {
		// Rate limit: one fetch per min_interval (per backoff after
		// failures), however many unknown kids ask.
		return earliest.Sub(now)
	}
	if wanted && !due {
		v.kidRefreshes.Add(1)
	}
	f.wanted.Store(false)
	v.fetch(now)
	return max(f.next.Sub(now), time.Millisecond)
}

// gap is the least time between two fetch attempts: min_interval, and
// after failures an exponential backoff up to min_ttl.
func (f *fetcher) gap() time.Duration {
	g := f.minInterval
	for i := 1; i < f.fails && g < f.minTTL; i++ {
		g *= 2
	}
	return max(f.minInterval, min(g, f.minTTL))
}

// fetch gets the set and swaps it in, or keeps the last good one.
func (v *Verifier) fetch(now time.Time) {
	f := v.jwks
	if f.onFetch != nil {
		defer f.onFetch()
	}
	f.last = now
	v.fetches.Add(1)
	keys, skipped, ttl, err := f.get()
	if err == nil && len(keys) == 0 {
		err = fmt.Errorf("no usable key (%d skipped)", len(skipped))
	}
	if err != nil {
		v.fetchErrors.Add(1)
		f.fails++
		f.next = now.Add(f.gap())
		if f.fails == 1 || now.Sub(f.lastLog) >= logEvery {
			f.lastLog = now
			v.log.Warn("jwt: JWKS fetch failed; keeping the last good key set", "issuer", v.name, "url", f.url, "error", err, "failures", f.fails, "retry_in", f.gap().String())
		}
		return
	}
	if f.fails > 0 {
		v.log.Info("jwt: JWKS fetch recovered", "issuer", v.name, "url", f.url, "failures", f.fails)
	}
	f.fails = 0
	f.next = now.Add(ttl)
	for _, e := range skipped {
		v.log.Warn("jwt: JWKS key skipped", "issuer", v.name, "url", f.url, "reason", e.Error())
	}
	f.fetched = reuse(f.fetched, keys)
	v.keys.Store(newKeySet(v.static, f.fetched))
}

// get fetches and parses the set; ttl is its lifetime by Cache-Control.
func (f *fetcher) get() (keys []jwk.Key, skipped []error, ttl time.Duration, err error) {
	ctx, cancel := context.WithTimeout(f.ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	if len(body) > maxJWKSBytes {
		return nil, nil, 0, errors.New("JWK set larger than 1MiB")
	}
	keys, skipped, err = jwk.ParseSet(body)
	return keys, skipped, f.ttl(resp.Header.Get("Cache-Control")), err
}

// ttl is the set's lifetime: max-age clamped to [min_ttl, max_ttl], or
// default_ttl without one.
func (f *fetcher) ttl(cc string) time.Duration {
	age, ok := maxAge(cc)
	if !ok {
		return f.defTTL
	}
	return min(max(age, f.minTTL), f.maxTTL)
}

// maxAge reads the max-age directive of a Cache-Control value; no-store
// and no-cache count as max-age=0.
func maxAge(cc string) (time.Duration, bool) {
	for d := range strings.SplitSeq(cc, ",") {
		d = strings.TrimSpace(d)
		name, val, _ := strings.Cut(d, "=")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "no-store", "no-cache":
			return 0, true
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if err != nil || n < 0 {
				continue
			}
			return time.Duration(min(n, int64(1<<33))) * time.Second, true
		}
	}
	return 0, false
}
