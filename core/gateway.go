// Package core is the gateway engine: the fasthttp server, the compiled
// config snapshot, the route table, the filter chain and its feature
// lifecycle, the proxy terminal and the upstream call (Upstream.Do).
//
// The request path (Gateway.Handler, serve.go) loads the current Snapshot
// once, matches a route, runs its filters and its terminal (proxy.go:
// rewrite in place, then Upstream.Do: pick a target through package lb and
// exchange the request with the target's pooled connection), then the
// filters' response phase. It allocates nothing per request in steady
// state. Features (filters, terminals) live in their own packages and are
// registered through Options (feature.go).
package core

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"fastgate/core/accesslog"
	"fastgate/core/config"
)

// Options are the gateway's settings that are not in the config file.
type Options struct {
	// Logger receives the gateway's own logs. Default slog.Default().
	Logger *slog.Logger
	// ReusePort listens with SO_REUSEPORT so several processes can share
	// the address.
	ReusePort bool
	// Dial, when set, replaces TCP dialing of upstream targets, e.g. with
	// in-memory listeners in tests. The connect timeout does not apply.
	Dial func(addr string) (net.Conn, error)
	// Filters build the routes' filter chains, in chain order.
	Filters []FilterBuilder
	// Terminals build the routes' terminals other than core's proxy
	// (static, redirect, ...); each route must be claimed by one.
	Terminals []TerminalBuilder
	// Unrouted, when set, makes for each config the decoration of the
	// answers the gateway gives before a route matched (no route, 405, a
	// refused malformed request, OPTIONS *): cmd/fastgate's sets the
	// security headers. It returns nil when there is nothing to add; the
	// function it returns must not allocate.
	Unrouted func(cfg *config.Config) func(ctx *fasthttp.RequestCtx)
	// OnApply, when set, is called after every successful Apply (not at
	// New) with the config just applied, under the apply lock: it must not
	// block, nor call Apply or SetTargets (it may start goroutines that
	// do). The discovery manager syncs its sources with it.
	OnApply func(cfg *config.Config)
}

// Gateway serves requests on one listener with the current Snapshot, and
// swaps in a new one on Apply. It is safe for concurrent use.
type Gateway struct {
	snap atomic.Pointer[Snapshot]
	srv  *fasthttp.Server
	// perIP counts server.max_conns_per_ip over every listener Serve
	// serves (perip.go), in place of srv's own count; nil: no limit.
	perIP *perIPConns
	log   *slog.Logger
	opts  Options

	metrics *Metrics
	feats   *instances
	watch   *watchdog

	// applyMu serializes Apply and SetTargets, which build the next
	// snapshot (features may dial) without holding mu, and guards base
	// and overrides.
	applyMu sync.Mutex
	// base is the config last applied (New, Apply); overrides are the
	// upstreams' target lists set at run time (SetTargets), applied over
	// base's.
	base      *config.Config
	overrides map[string]targetOverride
	// mu guards live and accessLog.
	mu sync.Mutex
	// live are the snapshots that may still serve requests: the current
	// one and those replaced but not yet drained.
	live      []*Snapshot
	accessLog *accesslog.Logger
	// logWritten and logDropped add up the counts of closed access logs.
	logWritten, logDropped uint64
	retiring               sync.WaitGroup

	serving  atomic.Bool
	draining atomic.Bool
	// stopped is closed by Shutdown: snapshots still retiring stop waiting
	// for their requests.
	stopped  chan struct{}
	stopOnce sync.Once
	redirect *fasthttp.Server
	// h2 are the listeners serving HTTP/2 too (guarded by mu).
	h2 []*h2Listener
	// parks are the listeners' parked idle connections (guarded by mu).
	parks []*parkSet
	// leaving are targets removed from their upstream whose retired
	// snapshot left a streamed response running on them (guarded by mu),
	// listed as draining until it ends.
	leaving map[string][]*target
}

// New compiles cfg, which must have had SetDefaults and passed Validate, and
// returns a Gateway ready to Serve.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{log: opts.Logger, opts: opts, stopped: make(chan struct{}), base: cfg,
		overrides: make(map[string]targetOverride), leaving: make(map[string][]*target)}
	g.metrics = newMetrics(g.inflight)
	g.metrics.set.RegisterMetricsWriter(func(w io.Writer) {
		written, dropped := g.accessLogCounts()
		metrics.WriteCounterUint64(w, metricAccessLogLines, written)
		metrics.WriteCounterUint64(w, metricAccessLogDropped, dropped)
		metrics.WriteCounterUint64(w, metricWebSocketTotal, g.feats.ws.total.Load())
	})
	g.feats = &instances{m: g.metrics, current: &g.snap, ws: newWSRegistry()}
	g.metrics.set.GetOrCreateGauge(metricWebSocketOpen, func() float64 { return float64(g.feats.ws.open.Load()) })
	snap, err := compile(cfg, &opts, nil, g.feats, g.metrics, false)
	if err != nil {
		return nil, err
	}
	if err := g.attachAccessLog(snap, nil); err != nil {
		snap.Close()
		return nil, err
	}
	g.watch = startWatchdog()
	snap.watch = g.watch
	g.accessLog = snap.accessLog
	g.snap.Store(snap)
	snap.startHealth(g.log)
	g.live = []*Snapshot{snap}
	g.srv = g.newServer(&cfg.Server)
	g.perIP = newPerIPConns(cfg.Server.MaxConnsPerIP)
	return g, nil
}

func (g *Gateway) newServer(c *config.Server) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:            g.Handler,
		ErrorHandler:       g.errorHandler,
		Logger:             slogPrintf{g.log},
		ReadTimeout:        c.ReadTimeout.D(),
		WriteTimeout:       c.WriteTimeout.D(),
		IdleTimeout:        c.IdleTimeout.D(),
		MaxRequestBodySize: c.MaxRequestBody.Int(),
		ReadBufferSize:     c.MaxHeaderBytes.Int(),
		Concurrency:        c.Concurrency,
		MaxRequestsPerConn: c.MaxRequestsPerConn,
		// Proxied responses keep exactly the upstream's headers.
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		// Bodies go upstream as they came; the gateway never parses forms.
		DisablePreParseMultipartForm: true,
		SecureErrorLogMessage:        true,
		CloseOnShutdown:              true,
		// Tells connections when a response is done and when the next
		// request starts: idle ones give back large bodies (idlebody.go).
		ConnState: connState,
	}
}

// Snapshot returns the snapshot serving new requests.
func (g *Gateway) Snapshot() *Snapshot { return g.snap.Load() }

// Metrics returns the gateway's metrics.
func (g *Gateway) Metrics() *Metrics { return g.metrics }

// Listen opens the configured listen address (with SO_REUSEPORT when
// Options.ReusePort), terminating TLS when the config has certificates.
func (g *Gateway) Listen() (net.Listener, error) {
	cfg := g.snap.Load().cfg
	network := "tcp"
	if g.opts.ReusePort {
		network = "tcp4" // as fasthttp's reuseport listened
	}
	ln, err := listen(network, cfg.Listen, g.opts.ReusePort)
	if err != nil || !cfg.TLS.Enabled() {
		// Plain TCP connections are served by Serve through
		// waitFirstListener (serverconn.go).
		return ln, err
	}
	return tls.NewListener(ln, g.tlsConfig()), nil
}

// Serve serves requests from ln until Shutdown. Plain TCP connections
// write each complete response from the read that waits for the next
// request (serverConn), one syscall fewer per keep-alive request.
func (g *Gateway) Serve(ln net.Listener) error {
	g.serving.Store(true)
	idleFor := g.srv.IdleTimeout
	if idleFor <= 0 {
		idleFor = g.srv.ReadTimeout
	}
	l := waitFirstListener{Listener: ln, idleFor: idleFor, maxRequests: g.srv.MaxRequestsPerConn,
		parks: newParkSet(g.srv.ServeConn), // nil: no parking
		perIP: g.perIP}
	if l.parks != nil {
		g.mu.Lock()
		g.parks = append(g.parks, l.parks)
		g.mu.Unlock()
	}
	return g.srv.Serve(g.wrapHTTP2(l))
}

// ServeRedirect serves the HTTP-to-HTTPS redirect listener (tls.redirect_listen)
// from ln until Shutdown.
func (g *Gateway) ServeRedirect(ln net.Listener) error {
	g.mu.Lock()
	if g.redirect == nil {
		g.redirect = newRedirectServer(g.snap.Load().cfg.Listen, g.srv)
	}
	srv := g.redirect
	g.mu.Unlock()
	return srv.Serve(ln)
}

// Ready reports whether the gateway serves requests and is not draining:
// what /readyz answers.
func (g *Gateway) Ready() bool { return g.serving.Load() && !g.draining.Load() }

// Drain marks the gateway as draining: Ready turns false so load balancers
// in front stop sending new connections, while requests are still served.
// Shutdown drains too; call Drain first to give them time to notice.
func (g *Gateway) Drain() { g.draining.Store(true) }

// Shutdown drains: Ready turns false, the listener stops accepting,
// in-flight requests finish until ctx ends, idle keep-alive connections
// close; then upstream connections close and the access log is flushed.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.Drain()
	g.mu.Lock()
	redirect := g.redirect
	g.mu.Unlock()
	if redirect != nil {
		redirect.ShutdownWithContext(ctx)
	}
	g.shutdownHTTP2(ctx)
	g.mu.Lock()
	parks := g.parks
	g.mu.Unlock()
	for _, p := range parks {
		p.close() // idle connections close, as fasthttp closes its own
	}
	err := g.srv.ShutdownWithContext(ctx)
	g.feats.ws.shutdown(ctx)
	g.stopOnce.Do(func() {
		close(g.stopped)
		g.watch.stop()
	})
	g.retiring.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.live {
		s.stopHealth(nil)
		s.Close()
	}
	// After a drain timeout requests may still be running and logging;
	// the process is about to exit, so the log is only closed when none is.
	if g.accessLog != nil && err == nil {
		g.closeAccessLog(g.accessLog)
		g.accessLog = nil
	}
	return err
}

// Apply compiles cfg (SetDefaults and Validate done) and makes it serve new
// requests with one atomic swap. Requests in flight finish on the snapshot
// they started on; once it has drained, the replaced snapshot closes the
// connections of targets the new config dropped and the metric series of
// removed routes. On error nothing changes.
//
// Building the next snapshot (features may dial Redis or etcd) holds only
// the apply lock, never the lock that /metrics and retiring snapshots
// take: build first, then swap.
func (g *Gateway) Apply(cfg *config.Config) error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	prev := g.overrides
	g.overrides = g.keepOverrides(cfg)
	if err := g.swap(g.effective(cfg)); err != nil {
		g.overrides = prev
		return err
	}
	g.base = cfg
	if g.opts.OnApply != nil {
		g.opts.OnApply(cfg)
	}
	return nil
}

// swap compiles cfg and makes it serve new requests; the replaced snapshot
// retires once drained. g.applyMu must be held.
func (g *Gateway) swap(cfg *config.Config) error {
	old := g.snap.Load()
	next, err := compile(cfg, &g.opts, old, g.feats, g.metrics, false)
	if err != nil {
		return err
	}
	next.watch = g.watch
	for name, o := range g.overrides {
		if next.sources == nil {
			next.sources = make(map[string]string, len(g.overrides))
		}
		next.sources[name] = o.source
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.attachAccessLog(next, old); err != nil {
		g.feats.release(next.instances)
		return err
	}
	g.warnRestart(old.cfg, cfg)
	g.snap.Store(next)
	next.startHealth(g.log)
	g.accessLog = next.accessLog
	g.live = append(g.live, next)
	g.retiring.Add(1)
	go g.retire(old)
	return nil
}

// attachAccessLog gives next its access log: the current one when the
// destination is unchanged (reopened, for rotation), else a new one.
func (g *Gateway) attachAccessLog(next, old *Snapshot) error {
	c := &next.cfg.AccessLog
	if c.Path == config.AccessLogOff {
		return nil
	}
	if g.accessLog != nil && g.accessLog.Path() == c.Path && old != nil && old.cfg.AccessLog.Buffer == c.Buffer {
		g.accessLog.Reopen()
		next.accessLog = g.accessLog
		return nil
	}
	l, err := accesslog.Open(c.Path, c.Buffer, func(err error) {
		g.log.Error("access log write failed", "path", c.Path, "error", err)
	})
	if err != nil {
		return fmt.Errorf("access_log.path: %w", err)
	}
	next.accessLog = l
	return nil
}

// retire waits until old has no request in flight, then releases what the
// current snapshot does not use.
func (g *Gateway) retire(old *Snapshot) {
	defer g.retiring.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for old.inflight.Load() > 0 {
		select {
		case <-tick.C:
		case <-g.stopped:
			return
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	cur := g.snap.Load()
	g.keepLeaving(old, cur)
	old.closeTargets(cur)
	old.stopHealth(cur)
	g.feats.release(old.instances)
	old.instances = nil
	g.metrics.retain(cur)
	for i, s := range g.live {
		if s == old {
			g.live = append(g.live[:i], g.live[i+1:]...)
			break
		}
	}
	if l := old.accessLog; l != nil && !g.accessLogUsed(l) {
		g.closeAccessLog(l)
	}
}

// closeAccessLog flushes and closes l, keeping its counts.
func (g *Gateway) closeAccessLog(l *accesslog.Logger) {
	l.Close()
	g.logWritten += l.Written()
	g.logDropped += l.Dropped()
}

func (g *Gateway) accessLogUsed(l *accesslog.Logger) bool {
	for _, s := range g.live {
		if s.accessLog == l {
			return true
		}
	}
	return false
}

// warnRestart logs the changes a reload cannot apply to a running process.
func (g *Gateway) warnRestart(old, next *config.Config) {
	var keys []string
	if old.Listen != next.Listen {
		keys = append(keys, "listen")
	}
	if old.Admin.Listen != next.Admin.Listen {
		keys = append(keys, "admin.listen")
	}
	if old.TLS.Enabled() != next.TLS.Enabled() || old.TLS.MinVersion != next.TLS.MinVersion || old.TLS.RedirectListen != next.TLS.RedirectListen {
		keys = append(keys, "tls (on/off, min_version, redirect_listen; certificates do reload)")
	}
	o, n := old.Server, next.Server
	o.TrustedProxies, n.TrustedProxies = nil, nil
	o.DrainTimeout, n.DrainTimeout = 0, 0
	if !reflect.DeepEqual(o, n) {
		keys = append(keys, "server (except trusted_proxies and drain_timeout)")
	}
	if len(keys) > 0 {
		g.log.Warn("config reloaded, but these changes need a restart to take effect", "keys", strings.Join(keys, ", "))
	}
}

// inflight is the number of requests being served, for the gauge.
func (g *Gateway) inflight() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, s := range g.live {
		n += s.inflight.Load()
	}
	return float64(n)
}

// accessLogCounts returns the lines written and dropped by every access
// log of the gateway's life.
func (g *Gateway) accessLogCounts() (written, dropped uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	written, dropped = g.logWritten, g.logDropped
	seen := make(map[*accesslog.Logger]bool, 2)
	for _, s := range g.live {
		if l := s.accessLog; l != nil && !seen[l] {
			seen[l] = true
			written += l.Written()
			dropped += l.Dropped()
		}
	}
	return written, dropped
}
