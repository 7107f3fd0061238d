package core

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// A client that closes its connection while its request waits on an
// upstream should not keep that upstream busy until the timeout: nginx
// closes the upstream connection (proxy_ignore_client_abort off), Go's
// net/http cancels the request's context. fasthttp reads nothing from a
// connection while its handler runs, so nothing notices; the watchdog
// does. It is one goroutine per gateway that, every watchTick while
// requests are registered (see watchdog), polls
// (ppoll with POLLRDHUP, no wait, nothing read) the client connection of
// each request that has waited on an upstream for more than watchMinAge:
// the peer's FIN (even behind unread data) or a reset means it is gone, and the request's
// upstream connections get a deadline in the past, which ends the
// attempt at once; the attempt's connection is then closed, never pooled,
// and the request is not retried. Requests faster than watchMinAge cost
// one registration (a shard lock) and no syscall.
//
// A request is polled again when its age has doubled since the last poll
// (at 40, 80, 160 ms ...), and at least every watchMaxGap: a client that
// leaves is seen within its request's age, or a second, and a request
// costs O(log age) polls. Polling all of them every tick made the
// watchdog's work grow with the backlog, so a burst that queued requests
// on a busy gateway slowed it further: a thousand requests waiting 400 ms
// were nineteen thousand polls where they are now four thousand.
const (
	watchTick   = 20 * time.Millisecond
	watchMinAge = 40 * time.Millisecond
	watchMaxGap = time.Second
	watchShards = 16
)

// cancelState is an exchange's side of the watchdog: whether the client
// is gone, the upstream connections in use, and its place in a shard.
//
// canceled and conns follow a store-then-load protocol on both sides, so
// no lock is taken per attempt: track stores a connection, then loads
// canceled; abort stores canceled, then loads the connections. Sequential
// consistency of sync/atomic means that when abort sees a connection,
// untrack (store nil, then load canceled) sees canceled and closes that
// connection instead of pooling it; a connection abort does not see is
// untouched.
type cancelState struct {
	canceled atomic.Bool
	// conns are the attempts' connections in use; up to len(conns) at a
	// time are watched (a fan-out's calls beyond that are not cancelled).
	// Only connections of core's dialer are: the watchdog needs their
	// descriptor-backed deadline.
	conns [4]atomic.Pointer[rawTCPConn]

	// guarded by the shard's lock
	shard      *watchShard
	next, prev *exchange
	since      int64 // unix nanos of the registration
	due        int64 // unix nanos of the next poll
}

func (c *cancelState) reset() {
	c.canceled.Store(false)
	for i := range c.conns {
		c.conns[i].Store(nil)
	}
}

// watchdog watches the client connections of requests in upstream calls.
//
// It ticks only while requests are registered. A tick that finds every
// shard empty puts it to sleep (asleep), and the registration that finds it
// asleep arms its timer for watchMinAge, when that request is first due:
// an idle gateway has no timer firing, and one serving a request now and
// then wakes about once per watchMinAge, not every watchTick. Each wake of
// an idle Go process costs tens of microseconds of CPU (the timer, the
// thread, sysmon): an idle gateway spent 7.3 ms of CPU a second with the
// ticker always running, 3.8 without it (README, Performance).
type watchdog struct {
	shards [watchShards]watchShard
	_      [64]byte // asleep, read by every watch, off the last shard's line
	// timer wakes run; it is armed by run itself while requests are
	// registered, and by the one watch that clears asleep.
	timer  *time.Timer
	asleep atomic.Bool
	// slept, when set (tests), is called each time run goes to sleep.
	slept func()
	quit  chan struct{}
	done  chan struct{}
	// canceled counts the requests whose client went away mid-call.
	canceled atomic.Uint64
	// polls counts the client connections polled.
	polls atomic.Uint64
}

type watchShard struct {
	mu   sync.Mutex
	head *exchange
	_    [40]byte // keep shards off each other's cache lines
}

func startWatchdog() *watchdog {
	w := newWatchdog()
	go w.run()
	return w
}

// newWatchdog returns a watchdog, asleep, for run.
func newWatchdog() *watchdog {
	w := &watchdog{quit: make(chan struct{}), done: make(chan struct{})}
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	w.asleep.Store(true)
	return w
}

func (w *watchdog) stop() {
	close(w.quit)
	<-w.done
}

// watch registers x, once per request, when its first upstream attempt
// starts.
func (w *watchdog) watch(x *exchange, now time.Time) {
	c := &x.cancel
	// The shard follows the exchange's address: exchanges are pooled per
	// P, so a core keeps locking the same shard, and no shared counter
	// bounces between cores. It is the same shard for every call of one
	// request, so a fan-out's concurrent calls check and register under
	// its lock.
	sh := &w.shards[(uintptr(unsafe.Pointer(x))>>9)%watchShards]
	sh.mu.Lock()
	if c.shard != nil { // registered by another call of the request
		sh.mu.Unlock()
		return
	}
	c.since = now.UnixNano()
	c.shard, c.due = sh, c.since+int64(watchMinAge)
	c.next, c.prev = sh.head, nil
	if sh.head != nil {
		sh.head.cancel.prev = x
	}
	sh.head = x
	sh.mu.Unlock()
	// After the unlock: run stores asleep before it looks at the shards
	// again, so either it sees x or this sees asleep (see run).
	if w.asleep.Load() && w.asleep.CompareAndSwap(true, false) {
		w.timer.Reset(watchMinAge)
	}
}

// unwatch removes x from its shard, if registered.
func unwatch(x *exchange) {
	c := &x.cancel
	sh := c.shard
	if sh == nil {
		return
	}
	sh.mu.Lock()
	if c.prev != nil {
		c.prev.cancel.next = c.next
	} else {
		sh.head = c.next
	}
	if c.next != nil {
		c.next.cancel.prev = c.prev
	}
	c.shard, c.next, c.prev = nil, nil, nil
	sh.mu.Unlock()
}

func (w *watchdog) run() {
	defer close(w.done)
	defer w.timer.Stop()
	for {
		select {
		case <-w.quit:
			return
		case now := <-w.timer.C:
			busy := false
			for i := range w.shards {
				busy = w.scan(&w.shards[i], now.UnixNano()) || busy
			}
			if !busy {
				// Asleep first, then the shards again: a request
				// registered meanwhile is seen here, or its watch sees
				// asleep and arms the timer itself (the shard's lock
				// orders the two). Exactly one CompareAndSwap wins.
				w.asleep.Store(true)
				if !w.registered() {
					if w.slept != nil {
						w.slept()
					}
					continue
				}
				if !w.asleep.CompareAndSwap(true, false) {
					continue // that watch armed the timer
				}
			}
			w.timer.Reset(watchTick)
		}
	}
}

// registered reports whether any shard holds a request.
func (w *watchdog) registered() bool {
	for i := range w.shards {
		sh := &w.shards[i]
		sh.mu.Lock()
		busy := sh.head != nil
		sh.mu.Unlock()
		if busy {
			return true
		}
	}
	return false
}

// scan polls the requests of sh due by now (unix nanos) and cancels those
// whose client has gone, and reports whether sh holds any request. The
// polls run under the shard's lock: a registered request is still being
// served, so its client connection is open on the gateway's side and its
// descriptor cannot have been reused.
func (w *watchdog) scan(sh *watchShard, now int64) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for x := sh.head; x != nil; x = x.cancel.next {
		c := &x.cancel
		if c.due > now || c.canceled.Load() {
			continue
		}
		w.polls.Add(1)
		if clientGone(x.ctx.Conn()) {
			c.abort()
			w.canceled.Add(1)
			continue
		}
		c.due = now + min(now-c.since, int64(watchMaxGap))
	}
	return sh.head != nil
}

// clientGone reports whether the peer of conn has closed or reset it,
// without reading: ppoll with POLLRDHUP and no wait sees the peer's FIN
// even behind unread data (a pipelined request, a TLS close_notify).
// Connections without a descriptor (in-memory pipes) are never reported
// gone.
func clientGone(conn net.Conn) bool {
	if tc, ok := tlsConnOf(conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	rc.Control(func(fd uintptr) { //nolint:errcheck // a closed conn: not ours to judge
		gone = peerClosed(fd)
	})
	return gone
}

// Poll events of ppoll(2) (Linux).
const (
	pollRDHUP = 0x2000
	pollERR   = 0x8
	pollHUP   = 0x10
)

// pollFd is struct pollfd.
type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

// peerClosed polls fd once, without waiting, for the peer's half-close,
// a hang-up or an error (a reset).
func peerClosed(fd uintptr) bool {
	p := pollFd{fd: int32(fd), events: pollRDHUP}
	var zero syscall.Timespec
	n, _, errno := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1, uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
	return errno == 0 && n == 1 && p.revents&(pollRDHUP|pollHUP|pollERR) != 0
}

// longAgo is a deadline in the past: set on a connection, it ends any
// read or write in progress at once.
var longAgo = time.Unix(1, 0)

// abort marks the request canceled and ends the reads and writes of its
// upstream connections. It runs under the exchange's shard lock, so the
// exchange is not released meanwhile.
func (c *cancelState) abort() {
	c.canceled.Store(true)
	for i := range c.conns {
		if rc := c.conns[i].Load(); rc != nil {
			// Not rawTCPConn.SetDeadline: its kept deadline belongs to the
			// request's goroutine, which closes the connection after this.
			rc.TCPConn.SetDeadline(longAgo) //nolint:errcheck
		}
	}
}

// track records conn as in use by an attempt of x; false when the client
// is gone already (the attempt must not start). x may be nil.
func (x *exchange) track(conn net.Conn) bool {
	if x == nil {
		return true
	}
	c := &x.cancel
	if rc, ok := conn.(*rawTCPConn); ok {
		for i := range c.conns {
			if c.conns[i].CompareAndSwap(nil, rc) {
				break
			}
		}
	}
	if c.canceled.Load() {
		x.untrack(conn)
		return false
	}
	return true
}

// untrack forgets conn and reports whether the client went away while it
// was in use: then the connection must be closed, not pooled.
func (x *exchange) untrack(conn net.Conn) (canceled bool) {
	if x == nil {
		return false
	}
	c := &x.cancel
	if rc, ok := conn.(*rawTCPConn); ok {
		for i := range c.conns {
			if c.conns[i].Load() == rc {
				c.conns[i].Store(nil)
				break
			}
		}
	}
	return c.canceled.Load()
}

// clientCanceled reports whether x's client went away during an upstream
// call. x may be nil.
func (x *exchange) clientCanceled() bool { return x != nil && x.cancel.canceled.Load() }
