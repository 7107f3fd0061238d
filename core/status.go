package core

import (
	"cmp"
	"sort"
	"time"
)

// UpstreamStatus is the state of one upstream, for GET /upstreams.
type UpstreamStatus struct {
	Name     string `json:"name"`
	Balancer string `json:"balancer"`
	// Source names who set the targets: config, admin, dns, etcd or file.
	Source   string `json:"source"`
	InFlight int64  `json:"in_flight"`
	Panic    bool   `json:"panic"`
	// Available counts the targets that are healthy and not ejected;
	// Ejected those ejected now.
	Available int `json:"available"`
	Ejected   int `json:"ejected"`
	// EjectionsOverflow counts the ejections max_ejection_percent refused.
	EjectionsOverflow uint64         `json:"ejections_overflow"`
	ActiveChecks      bool           `json:"active_checks"`
	Breaker           BreakerStatus  `json:"breaker"`
	Budget            BudgetStatus   `json:"retry_budget"`
	Targets           []TargetStatus `json:"targets"`
	// Draining are targets the current list dropped that requests begun
	// before the change may still use.
	Draining []TargetStatus `json:"draining,omitempty"`
}

// BreakerStatus is the state of an upstream's circuit breaker; limits of 0
// mean unlimited.
type BreakerStatus struct {
	MaxRequests      int    `json:"max_requests"`
	MaxPending       int    `json:"max_pending"`
	Active           int64  `json:"active"`
	Pending          int64  `json:"pending"`
	RejectedRequests uint64 `json:"rejected_requests"`
	RejectedPending  uint64 `json:"rejected_pending"`
}

// BudgetStatus is the state of an upstream's retry budget.
type BudgetStatus struct {
	Ratio      float64 `json:"ratio"`
	MinRetries int     `json:"min_retries"`
	Requests   int64   `json:"active_requests"`
	Retries    int64   `json:"active_retries"`
	Exhausted  uint64  `json:"exhausted"`
}

// TargetStatus is the state of one target.
type TargetStatus struct {
	Addr                string     `json:"addr"`
	Weight              int        `json:"weight"`
	InFlight            int64      `json:"in_flight"`
	Available           bool       `json:"available"`
	Healthy             bool       `json:"healthy"`
	Ejected             bool       `json:"ejected"`
	EjectedUntil        *time.Time `json:"ejected_until,omitempty"`
	TimesEjected        int        `json:"times_ejected"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	EWMAMillis          float64    `json:"ewma_ms"`
	// Ejections counts every ejection of the target.
	Ejections uint64 `json:"ejections"`
}

// Upstreams returns the state of the current snapshot's upstreams, sorted
// by name.
func (g *Gateway) Upstreams() []UpstreamStatus {
	g.mu.Lock()
	s := g.snap.Load()
	draining := make(map[string][]*target)
	for name := range s.upstreams {
		draining[name] = g.drainingTargets(s, name)
	}
	g.mu.Unlock()
	out := make([]UpstreamStatus, 0, len(s.upstreams))
	for name, up := range s.upstreams {
		us := UpstreamStatus{
			Name:     name,
			Source:   cmp.Or(s.sources[name], SourceConfig),
			Balancer: s.cfg.Upstreams[name].Balancer,
			InFlight: up.set.InFlight(),
			Panic:    up.set.Panic(),

			Available:         up.set.Available(),
			Ejected:           up.set.Ejected(),
			EjectionsOverflow: up.set.EjectionsOverflow(),
			ActiveChecks:      up.health.active,
		}
		cfg := s.cfg.Upstreams[name]
		b := up.breaker
		us.Breaker = BreakerStatus{
			MaxRequests: cfg.CircuitBreaker.MaxRequests, MaxPending: cfg.CircuitBreaker.MaxPending,
			Active: b.Active(), Pending: b.Pending(),
			RejectedRequests: b.RejectedRequests(), RejectedPending: b.RejectedPending(),
		}
		us.Budget = BudgetStatus{
			Ratio: cfg.Retries.Budget, MinRetries: cfg.Retries.MinRetries,
			Requests: b.Active(), Retries: up.budget.Retries(), Exhausted: up.budget.Exhausted(),
		}
		for _, t := range up.targets {
			us.Targets = append(us.Targets, targetStatus(t))
		}
		for _, t := range draining[name] {
			us.Draining = append(us.Draining, targetStatus(t))
		}
		out = append(out, us)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// targetStatus reports t's state.
func targetStatus(t *target) TargetStatus {
	l := t.lb
	ts := TargetStatus{
		Addr:                t.addr,
		Weight:              l.Weight(),
		InFlight:            l.InFlight(),
		Available:           l.Available(),
		Healthy:             l.Healthy(),
		Ejected:             l.Ejected(),
		TimesEjected:        l.TimesEjected(),
		ConsecutiveFailures: l.ConsecutiveFailures(),
		EWMAMillis:          float64(l.EWMA().Microseconds()) / 1000,
		Ejections:           l.Ejections(),
	}
	if l.Ejected() {
		u := time.Unix(0, l.EjectedUntil()).UTC()
		ts.EjectedUntil = &u
	}
	return ts
}
