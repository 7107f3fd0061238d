package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// The idle-connection phase answers "what does a client that keeps its
// connection open cost while it sends nothing": a gateway in front of many
// clients (browsers, mobile apps, services with connection pools) holds
// far more idle keep-alive connections than busy ones. It runs first, on
// the proxies just started: -idle-conns client connections, each sends one
// GET ~100 B and reads the answer, and all stay open, opened in two halves
// that each stay idle -idle-settle (2s) before the next step. The figure
// is the growth of the proxy's resident memory (VmRSS of all its
// processes) over the second half, per connection: what one more idle
// connection costs once others are held, garbage a collector has not yet
// reclaimed included. (fastgate parks a connection idle for a second:
// what the first half's requests used is free for the second's.)

// idleResult is one proxy's idle-connection figure.
type idleResult struct {
	Target      string  `json:"target"`
	Conns       int     `json:"conns"`
	RSSBeforeKB int64   `json:"rss_before_kb"`
	RSSAfterKB  int64   `json:"rss_after_kb"`
	PerConnKB   float64 `json:"per_conn_kb"`
	Settle      string  `json:"settle"` // how long each half stayed idle
}

// phaseTargets are the proxies the idle-connection and slow-clients phases
// measure.
var phaseTargets = []string{targetFastgate, targetNginx, targetHAProxy}

// measureIdle runs the phase on every proxy there is.
func (b *bench) measureIdle() error {
	for _, name := range phaseTargets {
		t := b.targets[name]
		if t == nil {
			continue
		}
		r, err := idleMemory(t, b.cfg.idleConns, b.cfg.idleSettle)
		if err != nil {
			return err
		}
		b.res.Idle = append(b.res.Idle, r)
		b.logf("idle connections  %-9s %d held: %.1f KB each over the second half (RSS %d → %d KB)", name, r.Conns, r.PerConnKB, r.RSSBeforeKB, r.RSSAfterKB)
	}
	return nil
}

// idleRequest is the one request of each idle connection.
const idleRequest = "GET /bench/idle HTTP/1.1\r\nHost: bench\r\n\r\n"

// idleMemory opens n connections to t, one request each, in two halves
// that each stay idle for settle, and measures t's resident memory before
// and after the second.
func idleMemory(t *target, n int, settle time.Duration) (*idleResult, error) {
	host := strings.TrimPrefix(t.url, "http://")
	br := bufio.NewReader(nil)
	var resp fasthttp.Response
	get := func(c net.Conn) error {
		if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return err
		}
		if _, err := c.Write([]byte(idleRequest)); err != nil {
			return err
		}
		br.Reset(c)
		if err := resp.Read(br); err != nil {
			return err
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode())
		}
		return nil
	}
	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", host, 5*time.Second) }

	// Warm up first (pools, buffers), on one connection, closed before
	// the count.
	c, err := dial()
	if err != nil {
		return nil, fmt.Errorf("bench: idle connections to %s: %w", t.name, err)
	}
	for range 100 {
		if err := get(c); err != nil {
			c.Close()
			return nil, fmt.Errorf("bench: idle connections to %s: warm-up: %w", t.name, err)
		}
	}
	c.Close()

	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	open := func(to int) error {
		for i := len(conns); i < to; i++ {
			c, err := dial()
			if err != nil {
				return fmt.Errorf("bench: idle connection %d of %d to %s: %w", i+1, n, t.name, err)
			}
			conns = append(conns, c)
			if err := get(c); err != nil {
				return fmt.Errorf("bench: idle connection %d of %d to %s: %w", i+1, n, t.name, err)
			}
		}
		time.Sleep(settle) // idle, as the phase measures
		return nil
	}
	half := n / 2
	if err := open(half); err != nil {
		return nil, err
	}
	before, err := t.rssKB()
	if err != nil {
		return nil, err
	}
	if err := open(n); err != nil {
		return nil, err
	}
	after, err := t.rssKB()
	if err != nil {
		return nil, err
	}
	return &idleResult{Target: t.name, Conns: n, RSSBeforeKB: before, RSSAfterKB: after,
		PerConnKB: float64(after-before) / float64(n-half), Settle: settle.String()}, nil
}

// rssKB returns the resident memory of t's processes and their children,
// summed, in KiB.
func (t *target) rssKB() (int64, error) {
	var sum int64
	for _, pid := range t.pids() {
		kb, err := rssOf(pid)
		if err != nil {
			return 0, fmt.Errorf("bench: resident memory of %s (pid %d): %w", t.name, pid, err)
		}
		sum += kb
	}
	return sum, nil
}

// rssOf reads VmRSS from /proc/PID/status.
func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v))
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// idleTableRows is the phase's table.
func (r *results) idleTableRows() ([]string, [][]string) {
	head := []string{"target", "connections", "RSS at half MiB", "RSS at all MiB", "KB per idle connection"}
	var rows [][]string
	for _, ir := range r.Idle {
		rows = append(rows, []string{r.targetLabel(ir.Target), strconv.Itoa(ir.Conns),
			fmtNum(float64(ir.RSSBeforeKB)/1024, 1), fmtNum(float64(ir.RSSAfterKB)/1024, 1), fmtNum(ir.PerConnKB, 1)})
	}
	return head, rows
}

// idleTitle heads the phase's table.
func (r *results) idleTitle() string {
	return fmt.Sprintf("**idle keep-alive connections** — %d client connections held open, each after one GET ~100 B, on the proxies just started, opened in two halves each left idle %s: growth of the proxy's resident memory (VmRSS of all its processes) over the second half, per connection",
		r.Idle[0].Conns, r.Idle[0].Settle)
}
