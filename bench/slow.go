package main

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The slow-clients phase answers "what does a request cost when it comes
// alone, on a connection that waited seconds for it": a gateway in front
// of browsers, mobile apps and services that call now and then sees that
// more than back-to-back requests. -slow-clients keep-alive connections
// each send a GET ~100 B every -slow-every (2.5s), their sends spread
// evenly over the period, so the proxy serves clients/every requests a
// second, each on a connection idle since its last. After one period (every
// connection open and used once) and a quarter more, the proxy's CPU time
// and the responses are counted over -slow-time; the resident memory is
// read at its end: what holding those clients costs. fastgate parks a
// connection idle for a second (core/park.go), so here each request
// unparks one. The proxies take turns, -repeat times, as the workloads do.

// slowResult is the phase: one row per proxy, its runs' CPU per request,
// requests/s and resident memory.
type slowResult struct {
	Clients int    `json:"clients"`
	Every   string `json:"every"`  // each client's period
	Window  string `json:"window"` // how long each run counted
	Rows    []*row `json:"rows"`
	// RSSMiB is each proxy's resident memory at the end of its runs.
	RSSMiB map[string]stat  `json:"rss_mib"`
	Ratios map[string]ratio `json:"ratios"` // fastgate over nginx / haproxy
	rss    map[string][]float64
}

// slowRequest is each slow client's request.
const slowRequest = "GET /bench/slow HTTP/1.1\r\nHost: bench\r\n\r\n"

// measureSlow runs the phase on every proxy there is.
func (b *bench) measureSlow() error {
	sr := &slowResult{Clients: b.cfg.slowClients, Every: b.cfg.slowEvery.String(), Window: b.cfg.slowTime.String(),
		RSSMiB: map[string]stat{}, rss: map[string][]float64{}}
	for i := range b.cfg.repeat {
		for _, name := range phaseTargets {
			t := b.targets[name]
			if t == nil {
				continue
			}
			r, rss, err := slowClients(t, b.cfg.slowClients, b.cfg.slowEvery, b.cfg.slowTime)
			if err != nil {
				return err
			}
			rw := addRow(&sr.Rows, name)
			rw.Runs = append(rw.Runs, r)
			sr.rss[name] = append(sr.rss[name], float64(rss)/1024)
			b.logf("slow clients  %-9s run %d/%d: %s µs/req (user %s, sys %s), %s req/s, RSS %d KB, %d errors",
				name, i+1, b.cfg.repeat, trimFloat(r.CPUPerReq, 1), trimFloat(r.UserPerReq, 1), trimFloat(r.SysPerReq, 1),
				trimFloat(r.RPS, 0), rss, r.Errors)
		}
	}
	b.res.Slow = sr
	return nil
}

// finish computes the rows' statistics and fastgate's ratios.
func (sr *slowResult) finish() {
	for _, rw := range sr.Rows {
		rw.finish()
		sr.RSSMiB[rw.Target] = statOfValues(sr.rss[rw.Target])
	}
	sr.Ratios = addRatios(sr.Ratios, findRow(sr.Rows, targetFastgate), &workloadResult{Rows: sr.Rows})
}

// slowClients runs n slow clients against t, each sending a request every
// every, and returns the run counted over window after the first period,
// and t's resident memory at its end (KiB).
func slowClients(t *target, n int, every, window time.Duration) (run, int64, error) {
	host := strings.TrimPrefix(t.url, "http://")
	var (
		done, failed atomic.Uint64
		firstErr     atomic.Pointer[error]
		wg           sync.WaitGroup
	)
	stop := make(chan struct{})
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, &err)
	}
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", host, 5*time.Second)
			if err != nil {
				fail(err)
				return
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 4096)
			var resp fasthttp.Response
			next := start.Add(every * time.Duration(i) / time.Duration(n))
			tick := time.NewTimer(time.Until(next))
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if err := slowGet(c, br, &resp); err != nil {
					fail(err)
					return
				}
				done.Add(1)
				next = next.Add(every)
				tick.Reset(time.Until(next))
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()

	time.Sleep(time.Until(start.Add(every + every/4)))
	n0, cpu0, err := done.Load(), cpuTime{}, error(nil)
	if cpu0, err = t.cpuTime(); err != nil {
		return run{}, 0, err
	}
	t0 := time.Now()
	time.Sleep(window)
	n1 := done.Load()
	cpu1, err := t.cpuTime()
	if err != nil {
		return run{}, 0, err
	}
	elapsed := time.Since(t0)
	rss, err := t.rssKB()
	if err != nil {
		return run{}, 0, err
	}
	if p := firstErr.Load(); p != nil {
		return run{}, 0, fmt.Errorf("bench: slow clients of %s: %d failed, the first: %w", t.name, failed.Load(), *p)
	}
	cpu := cpu1.sub(cpu0)
	r := run{Requests: n1 - n0, RPS: float64(n1-n0) / elapsed.Seconds(), CPUSeconds: cpu.total().Seconds()}
	if r.Requests > 0 {
		k := 1e6 / float64(r.Requests)
		r.CPUPerReq, r.UserPerReq, r.SysPerReq = r.CPUSeconds*k, cpu.user.Seconds()*k, cpu.sys.Seconds()*k
	}
	return r, rss, nil
}

// slowGet sends one request on c and reads its response through br.
func slowGet(c net.Conn, br *bufio.Reader, resp *fasthttp.Response) error {
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte(slowRequest)); err != nil {
		return err
	}
	if err := resp.Read(br); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode())
	}
	return nil
}

// slowTableRows is the phase's table.
func (r *results) slowTableRows() ([]string, [][]string) {
	sr := r.Slow
	single := r.Settings.Repeat == 1
	head := []string{"target", "requests/s", "CPU µs / request", "user / kernel µs", "RSS MiB"}
	var rows [][]string
	for _, rw := range sr.Rows {
		rows = append(rows, []string{r.targetLabel(rw.Target), fmtNum(rw.RPS.Median, 0), fmtStat(rw.CPUPerReq, 1, single),
			fmtNum(rw.UserPerReq.Median, 1) + " / " + fmtNum(rw.SysPerReq.Median, 1), fmtNum(sr.RSSMiB[rw.Target].Median, 1)})
	}
	return head, rows
}

// slowTitle heads the phase's table.
func (r *results) slowTitle() string {
	sr := r.Slow
	return fmt.Sprintf("**slow clients** — %s keep-alive connections, each sending a GET ~100 B every %s (spread evenly), counted over %s after the first period; RSS at the end of each run (median)",
		strconv.Itoa(sr.Clients), sr.Every, sr.Window)
}

// slowRatioLines are fastgate's CPU per request over nginx's and
// HAProxy's in the phase.
func (r *results) slowRatioLines() []string {
	return appendRatioLines(nil, targetFastgate, r.Slow.Ratios)
}
