package core

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// errTooManyConns answers a connection over server.max_conns_per_ip.
var errTooManyConns = &Error{fasthttp.StatusTooManyRequests, errors.New("too many connections from this client IP (server.max_conns_per_ip)")}

// perIPConns counts each client IP's open connections for
// server.max_conns_per_ip. fasthttp's own count wraps every connection in
// a type of its own, which hides serverConn from the handler (no held
// responses, no parking), and it would count a parked connection as
// closed when fasthttp lets go of it. This count holds a connection from
// accept until its socket closes, parked or not.
type perIPConns struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

// newPerIPConns returns the count for a limit of max, or nil for none.
func newPerIPConns(max int) *perIPConns {
	if max <= 0 {
		return nil
	}
	return &perIPConns{max: max, n: make(map[netip.Addr]int)}
}

// open counts one more connection from ip, or reports false (not
// counted) when ip already has max open.
func (p *perIPConns) open(ip netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[ip] >= p.max {
		return false
	}
	p.n[ip]++
	return true
}

// closed ends the count of one connection from ip.
func (p *perIPConns) closed(ip netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[ip] <= 1 {
		delete(p.n, ip)
		return
	}
	p.n[ip]--
}

// connIP returns the client IP of an accepted connection.
func connIP(c net.Conn) (netip.Addr, bool) {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	return ip.Unmap(), ok
}

// rejectConnWrite bounds the write of a refused connection's 429.
const rejectConnWrite = time.Second

// rejectConn answers a connection over the limit with a JSON 429 and closes
// it. A TLS connection is only closed: its handshake has not begun, and
// answering would wait for it in the accept loop.
func rejectConn(c net.Conn, tlsConn bool) {
	defer c.Close()
	if tlsConn {
		return
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	WriteError(resp, errTooManyConns, appendRandomID(nil))
	resp.SetConnectionClose()
	c.SetWriteDeadline(time.Now().Add(rejectConnWrite)) //nolint:errcheck // the write fails instead
	bw := bufio.NewWriter(c)
	if resp.Write(bw) == nil {
		bw.Flush() //nolint:errcheck // closing anyway
	}
}

// uncount ends the connection's count against its client IP, once: when
// its socket closes.
func (c *parker) uncount() {
	if c.perIP != nil && !c.uncounted.Swap(true) {
		c.perIP.closed(c.ip)
	}
}
