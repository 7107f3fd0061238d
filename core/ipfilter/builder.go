// Package ipfilter admits or refuses clients by IP: the top-level ip rules
// and the route's, compiled per route into lookup Tables. The client IP is
// core.Request.ClientIP, already resolved past server.trusted_proxies. A
// refused client gets the gateway's JSON 403 and is counted in
// fastgate_ip_denied_total{route}. builder.go builds; filter.go is the
// request path; table.go the address lookup.
package ipfilter

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

const metricDenied = "fastgate_ip_denied_total"

// errDenied is the answer to a refused client.
var errDenied = &core.Error{Status: fasthttp.StatusForbidden, Err: errors.New("client IP not allowed on this route")}

// Builder is a core.FilterBuilder for the top-level and routes' ip rules.
// It holds nothing; it is safe for concurrent use.
type Builder struct{}

var _ core.FilterBuilder = Builder{}

// key is what a route's Filter is built from.
type key struct {
	Top, Route config.IPRules
}

// Key returns the top-level and route rules, nil when neither has one.
func (Builder) Key(cfg *config.Config, rc *config.Route) any {
	if cfg.IP.IsZero() && rc.IP.IsZero() {
		return nil
	}
	k := key{Top: cfg.IP}
	if rc.IP != nil {
		k.Route = *rc.IP
	}
	return k
}

// Validate compiles the rules without keeping them.
func (Builder) Validate(e *core.Env) error {
	_, err := compile(e.Config, e.Route)
	return err
}

// Build returns the route's Filter.
func (Builder) Build(e *core.Env) (core.Filter, error) {
	f, err := compile(e.Config, e.Route)
	if err != nil {
		return nil, err
	}
	f.denied = e.Counter(metricDenied + `{route=` + strconv.Quote(e.Route.Name) + `}`)
	return f, nil
}

// compile builds the Filter of cfg's and rc's rules.
func compile(cfg *config.Config, rc *config.Route) (*Filter, error) {
	f := &Filter{}
	rules := []struct {
		path string
		r    *config.IPRules
	}{{"ip (top-level)", &cfg.IP}, {"ip", rc.IP}}
	var deny []netip.Prefix
	for _, s := range rules {
		if s.r == nil {
			continue
		}
		allow, err := parseList(s.path+".allow", s.r.Allow)
		if err != nil {
			return nil, err
		}
		if len(allow) > 0 {
			f.allow = append(f.allow, NewTable(config.IPRanges(allow)))
		}
		d, err := parseList(s.path+".deny", s.r.Deny)
		if err != nil {
			return nil, err
		}
		deny = append(deny, d...)
	}
	if len(deny) > 0 {
		f.deny = NewTable(config.IPRanges(deny))
	}
	return f, nil
}

func parseList(path string, list []string) ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := config.ParseIPRule(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", path, i, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}
