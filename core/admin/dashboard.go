package admin

// The live dashboard: GET / serves a static page (dashboard.html, embedded)
// whose script polls GET /stats every second and draws it. The page holds
// no data, so it is public: a browser cannot send a bearer token when it
// navigates. /stats is token-protected like /upstreams; the page sends the
// token it was given in its URL fragment (#token=...) or its token field,
// and keeps it in sessionStorage.

import (
	"bytes"
	_ "embed"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"fastgate/core"
)

// The page and its assets, served from the binary; nothing is loaded
// from elsewhere.
var (
	//go:embed dashboard.html
	dashboardHTML []byte
	//go:embed dashboard.js
	dashboardJS []byte
	//go:embed dashboard.css
	dashboardCSS []byte
)

// dashboardCSP allows the page its own script, style and /stats, and
// nothing else; it is never framed.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// dashboard serves the page and its numbers for one gateway. It is safe
// for concurrent use.
type dashboard struct {
	gw      *core.Gateway
	sampler *sampler
	start   time.Time
	version string

	// mu guards buf, the collector's exposition buffer.
	mu  sync.Mutex
	buf bytes.Buffer
}

func newDashboard(gw *core.Gateway) *dashboard {
	d := &dashboard{gw: gw, start: time.Now(), version: buildVersion()}
	d.sampler = newSampler(d.collect)
	return d
}

// collect samples the gateway's counters at now.
func (d *dashboard) collect(now time.Time) *sample {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf.Reset()
	d.gw.Metrics().Set().WritePrometheus(&d.buf)
	return parseSample(d.buf.Bytes(), now)
}

// page serves the dashboard's HTML.
func (d *dashboard) page(ctx *fasthttp.RequestCtx) {
	serveAsset(ctx, "text/html; charset=utf-8", dashboardHTML)
}

// script serves the dashboard's JavaScript.
func (d *dashboard) script(ctx *fasthttp.RequestCtx) {
	serveAsset(ctx, "text/javascript; charset=utf-8", dashboardJS)
}

// style serves the dashboard's stylesheet.
func (d *dashboard) style(ctx *fasthttp.RequestCtx) {
	serveAsset(ctx, "text/css; charset=utf-8", dashboardCSS)
}

// serveAsset serves one of the page's files. They are revalidated on every
// load (no-cache), so an upgraded gateway's page is never stale, and they
// are small.
func serveAsset(ctx *fasthttp.RequestCtx, contentType string, body []byte) {
	ctx.SetContentType(contentType)
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, "no-cache")
	h.Set(fasthttp.HeaderXContentTypeOptions, "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set(fasthttp.HeaderContentSecurityPolicy, dashboardCSP)
	ctx.SetBody(body)
}

// stats serves the figures of the last seconds (README "Live
// dashboard").
func (d *dashboard) stats(ctx *fasthttp.RequestCtx) {
	samples := d.sampler.use()
	snap := d.gw.Snapshot()
	cfg := snap.Config()
	l := &live{
		now:       time.Now(),
		version:   d.version,
		routes:    make([]string, len(cfg.Routes)),
		inflight:  d.gw.RouteInFlight(nil),
		upstreams: d.gw.Upstreams(),
	}
	l.uptime = l.now.Sub(d.start)
	for i, r := range cfg.Routes {
		l.routes[i] = r.Name
	}
	b, err := json.Marshal(computeStats(samples, l))
	if err != nil {
		writeJSON(ctx, fasthttp.StatusInternalServerError, errorBody{Error: "encoding the stats failed: " + err.Error()})
		return
	}
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetBody(b)
}

// buildVersion is the version the binary was built with: the value of
// -ldflags "-X main.version=..." (make build sets it), else the module
// version, else the VCS revision, else "dev".
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	var rev string
	for _, s := range bi.Settings {
		switch s.Key {
		case "-ldflags":
			if _, v, ok := strings.Cut(s.Value, "main.version="); ok {
				if i := strings.IndexAny(v, " '\""); i >= 0 {
					v = v[:i]
				}
				if v != "" {
					return v
				}
			}
		case "vcs.revision":
			rev = s.Value
		}
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	if len(rev) > 12 {
		return rev[:12]
	}
	if rev != "" {
		return rev
	}
	return "dev"
}
