package stub

import (
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// maxHangReads bounds the reads of a hung connection: whatever the client
// sends meanwhile is discarded, up to maxHangReads*hangReadSize bytes.
const (
	maxHangReads = 1 << 14
	hangReadSize = 4 << 10
)

// reset closes the connection of ctx without a response. On TCP the close
// is a reset (RST, SO_LINGER 0); on other connections a plain close.
func reset(ctx *fasthttp.RequestCtx) {
	if tc, ok := ctx.Conn().(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(dropConn)
}

// dropConn returns at once: fasthttp closes the hijacked connection.
func dropConn(net.Conn) {}

// hang takes the connection of ctx over without a response; see hangConn.
func (s *Server) hang(ctx *fasthttp.RequestCtx) {
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(s.hangHandler)
}

// hangConn holds c, discarding what it sends, until the client closes it,
// HangTimeout passes or the stub shuts down. fasthttp then closes c.
func (s *Server) hangConn(c net.Conn) {
	if !s.hangs.add(c) {
		return
	}
	defer s.hangs.remove(c)
	var buf [hangReadSize]byte
	for range maxHangReads {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

// hangSet tracks hung connections so that shutdown can end them.
//
// hangSet is safe for concurrent use.
type hangSet struct {
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	stopped bool
	wg      sync.WaitGroup
}

// add registers c and arms its HangTimeout read deadline; false means the
// set is stopped and c must be let go.
func (hs *hangSet) add(c net.Conn) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.stopped {
		return false
	}
	// The deadline is set under the lock so that stop's deadline wins.
	_ = c.SetReadDeadline(time.Now().Add(HangTimeout))
	if hs.conns == nil {
		hs.conns = make(map[net.Conn]struct{})
	}
	hs.conns[c] = struct{}{}
	hs.wg.Add(1)
	return true
}

// remove unregisters c, added by add.
func (hs *hangSet) remove(c net.Conn) {
	hs.mu.Lock()
	delete(hs.conns, c)
	hs.mu.Unlock()
	hs.wg.Done()
}

// stop refuses further connections and wakes the reads of the current ones.
func (hs *hangSet) stop() {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.stopped = true
	past := time.Unix(1, 0)
	for c := range hs.conns {
		_ = c.SetReadDeadline(past)
	}
}

// wait waits until every added connection is removed.
func (hs *hangSet) wait() {
	hs.wg.Wait()
}

// len returns the number of hung connections.
func (hs *hangSet) len() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.conns)
}
