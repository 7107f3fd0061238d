package config

import (
	"strconv"
	"strings"
	"time"
)

// Defaults are the values that zero fields of a Config take. The command
// line's flags start from BuiltinDefaults and the result is passed to
// SetDefaults, so a flag changes the default of every upstream that does
// not set the field itself.
type Defaults struct {
	// Server fills the zero fields of Config.Server.
	Server Server
	// Pool fills the zero fields of each upstream's pool.
	Pool Pool
	// Timeouts fill the zero fields of each upstream's timeouts, except
	// PerTry, whose zero means "the request timeout".
	Timeouts Timeouts
	// Admin fills the zero fields of Config.Admin (-admin-listen).
	Admin Admin
	// AccessLog fills the zero fields of Config.AccessLog (-access-log).
	AccessLog AccessLog
}

// BuiltinDefaults returns the defaults documented on the Config fields.
func BuiltinDefaults() Defaults {
	return Defaults{
		Server: Server{
			ReadTimeout:    Duration(30 * time.Second),
			WriteTimeout:   Duration(30 * time.Second),
			IdleTimeout:    Duration(90 * time.Second),
			MaxRequestBody: 4 << 20,
			MaxHeaderBytes: 8 << 10,
			Concurrency:    256 * 1024,
			DrainTimeout:   Duration(30 * time.Second),
		},
		Pool: Pool{
			MaxConns:            512,
			MaxIdleConnDuration: Duration(10 * time.Second),
			ReadBufferSize:      8 << 10,
			WriteBufferSize:     8 << 10,
			MaxBufferedBody:     1 << 20,
		},
		Timeouts: Timeouts{
			Connect: Duration(time.Second),
			Request: Duration(30 * time.Second),
		},
	}
}

// Balancer names.
const (
	// BalancerRoundRobin takes the targets in turn; the default. The
	// other policies are in resilience.go.
	BalancerRoundRobin = "round_robin"
)

// Rewrite.Host values other than a literal host.
const (
	// RewriteHostTarget sends the target's host:port; the default.
	RewriteHostTarget = "target"
	// RewriteHostPreserve sends the client's Host header.
	RewriteHostPreserve = "preserve"
)

// DefaultListen is the listen address of a config that sets none.
const DefaultListen = ":8080"

// DefaultPath is the match path of a route that sets none: every path.
const DefaultPath = "/{path:*}"

// SetDefaults fills the zero fields of c from d and from the defaults
// documented on each field: listen, server, each upstream's balancer,
// target weights, pool and timeouts, and each route's name, path, methods
// (upper-cased) and rewrite host. A nil d means BuiltinDefaults. It leaves
// nil upstreams and routes for Validate to report.
func (c *Config) SetDefaults(d *Defaults) {
	if d == nil {
		b := BuiltinDefaults()
		d = &b
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	c.Server.setDefaults(&d.Server)
	c.Admin.setDefaults(&d.Admin)
	c.AccessLog.setDefaults(&d.AccessLog)
	c.TLS.setDefaults()
	for _, u := range c.Upstreams {
		if u != nil {
			u.setDefaults(d)
		}
	}
	for i, r := range c.Routes {
		if r != nil {
			r.setDefaults(i)
		}
	}
	c.setRateLimitDefaults()
	c.setAuthDefaults()
	c.setJWTDefaults()
	c.setCORSDefaults()
	c.setHeadersDefaults()
	c.setCacheDefaults()
}

func (s *Server) setDefaults(d *Server) {
	setZero(&s.ReadTimeout, d.ReadTimeout)
	setZero(&s.WriteTimeout, d.WriteTimeout)
	setZero(&s.IdleTimeout, d.IdleTimeout)
	setZero(&s.MaxRequestBody, d.MaxRequestBody)
	setZero(&s.MaxHeaderBytes, d.MaxHeaderBytes)
	setZero(&s.Concurrency, d.Concurrency)
	setZero(&s.MaxConnsPerIP, d.MaxConnsPerIP)
	setZero(&s.MaxRequestsPerConn, d.MaxRequestsPerConn)
	setZero(&s.DrainTimeout, d.DrainTimeout)
	if s.TrustedProxies == nil {
		s.TrustedProxies = append([]string(nil), d.TrustedProxies...)
	}
	if s.StripRequestHeaders == nil {
		s.StripRequestHeaders = append([]string(nil), DefaultStripRequestHeaders...)
	}
	setZero(&s.UnderscoreHeaders, UnderscoreHeadersDrop)
}

func (u *Upstream) setDefaults(d *Defaults) {
	if u.Balancer == "" {
		u.Balancer = BalancerRoundRobin
	}
	for i := range u.Targets {
		if u.Targets[i].Weight == 0 {
			u.Targets[i].Weight = 1
		}
	}
	if u.Discovery != nil {
		u.Discovery.setDefaults()
	}
	u.Pool.setDefaults(&d.Pool)
	setZero(&u.Timeouts.Connect, d.Timeouts.Connect)
	setZero(&u.Timeouts.Request, d.Timeouts.Request)
	u.setResilienceDefaults()
}

func (p *Pool) setDefaults(d *Pool) {
	setZero(&p.MaxConns, d.MaxConns)
	setZero(&p.MaxIdleConnDuration, d.MaxIdleConnDuration)
	setZero(&p.MaxConnWaitTimeout, d.MaxConnWaitTimeout)
	setZero(&p.ReadBufferSize, d.ReadBufferSize)
	setZero(&p.WriteBufferSize, d.WriteBufferSize)
	setZero(&p.MaxBufferedBody, d.MaxBufferedBody)
	setZero(&p.MaxResponseBody, d.MaxResponseBody)
}

func (r *Route) setDefaults(index int) {
	if r.Name == "" {
		r.Name = "route" + strconv.Itoa(index)
	}
	if r.Match.Path == "" {
		r.Match.Path = DefaultPath
	}
	for i, m := range r.Match.Methods {
		r.Match.Methods[i] = strings.ToUpper(m)
	}
	if r.Rewrite.Host == "" {
		r.Rewrite.Host = RewriteHostTarget
	}
	r.setTerminalDefaults()
	if r.WebSocket != nil {
		r.WebSocket.setDefaults()
	}
}

// setZero sets *v to d when *v is the zero value.
func setZero[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}
