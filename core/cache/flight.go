package cache

import (
	"sync"
	"time"
)

// flights are the fetches in progress, by key hash, for request
// collapsing (nginx's proxy_cache_lock, Varnish's waiting list): the
// first request that misses a key leads and fetches; the others wait for
// its end, then look the key up again.
type flights struct {
	mu sync.Mutex
	m  map[uint64]*flight
}

// flight is one fetch; done is closed when the leader has stored (or
// found it could not store) its response.
type flight struct {
	done chan struct{}
}

// join returns the flight of hash and whether the caller leads it (made
// it).
func (fs *flights) join(hash uint64) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fl := fs.m[hash]; fl != nil {
		return fl, false
	}
	fl := &flight{done: make(chan struct{})}
	fs.m[hash] = fl
	return fl, true
}

// finish ends the leader's flight fl of hash, waking its waiters.
func (fs *flights) finish(hash uint64, fl *flight) {
	fs.mu.Lock()
	if fs.m[hash] == fl {
		delete(fs.m, hash)
	}
	fs.mu.Unlock()
	close(fl.done)
}

// wait waits for fl's end at most timeout; false on timeout.
func (b *Builder) wait(fl *flight, timeout time.Duration) bool {
	b.waiting.Add(1)
	defer b.waiting.Add(-1)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-fl.done:
		return true
	case <-t.C:
		return false
	}
}

// refreshes are the background refreshes (stale-while-revalidate) in
// progress, one per key hash, at most maxRefreshes at once.
type refreshes struct {
	mu  sync.Mutex
	m   map[uint64]struct{}
	sem chan struct{}
}

// start reports whether the caller may refresh hash now: none is running
// for it and there is room.
func (rs *refreshes) start(hash uint64) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if _, ok := rs.m[hash]; ok {
		return false
	}
	select {
	case rs.sem <- struct{}{}:
	default:
		return false
	}
	rs.m[hash] = struct{}{}
	return true
}

// end ends the refresh of hash.
func (rs *refreshes) end(hash uint64) {
	rs.mu.Lock()
	delete(rs.m, hash)
	rs.mu.Unlock()
	<-rs.sem
}
