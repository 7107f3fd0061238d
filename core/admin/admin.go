// Package admin is the operations listener (design.md §6): health and
// readiness probes, Prometheus metrics, the effective config, reload,
// upstream state, and Go's profiler under /debug/pprof/. Everything but
// /healthz, /readyz and /metrics requires the bearer token of admin.token
// when one is set; the token is read from the serving config on every
// request, so a reload can rotate it.
package admin

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/router"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"fastgate/core"
	"fastgate/core/config"
)

// ReloadFunc reloads the config from its source ("admin" names the
// caller) and returns why it was rejected, if it was.
type ReloadFunc func(source string) error

// PurgeFunc removes the response cache's entry with key, or with prefix
// every entry whose key starts with key, and returns how many it removed.
type PurgeFunc func(key string, prefix bool) (int, error)

// Server is the admin HTTP server. It is safe for concurrent use.
type Server struct {
	gw     *core.Gateway
	reload ReloadFunc
	purge  PurgeFunc
	log    *slog.Logger
	srv    *fasthttp.Server
}

// New returns the admin server of gw. reload is called by POST /reload;
// nil answers 501 (no config file to reload from). purge is called by
// POST /cache/purge; nil answers 501.
func New(gw *core.Gateway, reload ReloadFunc, purge PurgeFunc, log *slog.Logger) *Server {
	// # HELP and # TYPE lines, for Prometheus and Grafana metadata.
	metrics.ExposeMetadata(true)
	s := &Server{gw: gw, reload: reload, purge: purge, log: log}
	r := router.New()
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metrics)
	r.GET("/config", s.auth(s.config))
	r.POST("/reload", s.auth(s.doReload))
	r.POST("/cache/purge", s.auth(s.doPurge))
	r.GET("/upstreams", s.auth(s.upstreams))
	r.PUT("/upstreams/{name}/targets", s.auth(s.tokenSet(s.putTargets)))
	r.POST("/upstreams/{name}/targets", s.auth(s.tokenSet(s.addTarget)))
	r.DELETE("/upstreams/{name}/targets/{addr}", s.auth(s.tokenSet(s.deleteTarget)))
	// The live dashboard: the page is public (it holds no data), its
	// figures need the token (dashboard.go).
	dash := newDashboard(gw)
	r.GET("/", dash.page)
	r.GET("/dashboard.js", dash.script)
	r.GET("/dashboard.css", dash.style)
	r.GET("/stats", s.auth(dash.stats))
	// Go's profiler, for finding where CPU and memory go in production.
	r.GET("/debug/pprof/{profile:*}", s.auth(pprofhandler.PprofHandler))
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		writeJSON(ctx, fasthttp.StatusNotFound, errorBody{Error: "no such admin endpoint; see GET / (the dashboard), /stats, /healthz, /readyz, /metrics, /config, /upstreams, POST /reload, /cache/purge and PUT/POST/DELETE /upstreams/{name}/targets"})
	}
	s.srv = &fasthttp.Server{
		Handler:               r.Handler,
		Name:                  "fastgate-admin",
		NoDefaultServerHeader: true,
		ReadTimeout:           10e9,
		WriteTimeout:          30e9,
		IdleTimeout:           60e9,
		CloseOnShutdown:       true,
		Logger:                quiet{},
	}
	return s
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// Serve serves the admin API on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops the admin server, waiting for requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

// Handler returns the admin API's handler, for tests.
func (s *Server) Handler() fasthttp.RequestHandler { return s.srv.Handler }

type errorBody struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

type statusBody struct {
	Status    string `json:"status"`
	Routes    int    `json:"routes,omitempty"`
	Upstreams int    `json:"upstreams,omitempty"`
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = fasthttp.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// auth wraps h with the bearer token check.
func (s *Server) auth(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		token := s.gw.Snapshot().Config().Admin.Token
		if token == "" || validBearer(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization), token) {
			h(ctx)
			return
		}
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="fastgate-admin"`)
		writeJSON(ctx, fasthttp.StatusUnauthorized, errorBody{Error: "missing or wrong admin token; send Authorization: Bearer <admin.token>"})
	}
}

// validBearer compares "Bearer TOKEN" with token in constant time.
func validBearer(h []byte, token string) bool {
	const prefix = "Bearer "
	if len(h) < len(prefix) || !equalFoldASCII(h[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare(h[len(prefix):], []byte(token)) == 1
}

func equalFoldASCII(b []byte, s string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d := s[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

func (s *Server) healthz(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, statusBody{Status: "ok"})
}

func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	if s.gw.Ready() {
		writeJSON(ctx, fasthttp.StatusOK, statusBody{Status: "ready"})
		return
	}
	writeJSON(ctx, fasthttp.StatusServiceUnavailable, statusBody{Status: "not ready: starting or draining"})
}

func (s *Server) metrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	s.gw.Metrics().Set().WritePrometheus(ctx)
	metrics.WriteProcessMetrics(ctx)
}

func (s *Server) config(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, s.gw.Snapshot().Config().Redacted())
}

func (s *Server) upstreams(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, s.gw.Upstreams())
}

func (s *Server) doReload(ctx *fasthttp.RequestCtx) {
	if s.reload == nil {
		writeJSON(ctx, fasthttp.StatusNotImplemented, errorBody{Error: "this gateway runs an embedded config (-demo); there is no file to reload"})
		return
	}
	if err := s.reload("admin"); err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{
			Error:    "config rejected; the previous config keeps serving",
			Problems: Problems(err),
		})
		return
	}
	cfg := s.gw.Snapshot().Config()
	writeJSON(ctx, fasthttp.StatusOK, statusBody{Status: "reloaded", Routes: len(cfg.Routes), Upstreams: len(cfg.Upstreams)})
}

// purgeRequest is the body of POST /cache/purge: one of key and prefix.
type purgeRequest struct {
	Key    string `json:"key"`
	Prefix string `json:"prefix"`
}

type purgeBody struct {
	Purged int `json:"purged"`
}

// doPurge removes cached responses: {"key": "GET example.com/p?a=1"} the
// one entry, {"prefix": "GET example.com/api/"} every entry whose key
// starts so. Keys are what responses carry in X-Cache-Key (README
// "Caching").
func (s *Server) doPurge(ctx *fasthttp.RequestCtx) {
	if s.purge == nil {
		writeJSON(ctx, fasthttp.StatusNotImplemented, errorBody{Error: "this gateway has no response cache"})
		return
	}
	var req purgeRequest
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || (req.Key == "") == (req.Prefix == "") {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: `want a JSON body with one of "key" (an exact cache key, as in X-Cache-Key) and "prefix", such as {"prefix": "GET api.example.com/products/"}`})
		return
	}
	key, prefix := req.Key, false
	if req.Prefix != "" {
		key, prefix = req.Prefix, true
	}
	n, err := s.purge(key, prefix)
	if err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, purgeBody{Purged: n})
}

// Problems lists err's problems one per entry: each field error of a
// config.Errors, or the error itself.
func Problems(err error) []string {
	var es config.Errors
	if errors.As(err, &es) {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}
