package core

import (
	"sort"
	"time"
)

// UpstreamStatus is the state of one upstream, for GET /upstreams.
type UpstreamStatus struct {
	Name     string         `json:"name"`
	Balancer string         `json:"balancer"`
	InFlight int64          `json:"in_flight"`
	Panic    bool           `json:"panic"`
	Targets  []TargetStatus `json:"targets"`
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
}

// Upstreams returns the state of the current snapshot's upstreams, sorted
// by name.
func (g *Gateway) Upstreams() []UpstreamStatus {
	s := g.snap.Load()
	out := make([]UpstreamStatus, 0, len(s.upstreams))
	for name, up := range s.upstreams {
		us := UpstreamStatus{
			Name:     name,
			Balancer: s.cfg.Upstreams[name].Balancer,
			InFlight: up.set.InFlight(),
			Panic:    up.set.Panic(),
		}
		for _, t := range up.targets {
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
			}
			if l.Ejected() {
				u := time.Unix(0, l.EjectedUntil()).UTC()
				ts.EjectedUntil = &u
			}
			us.Targets = append(us.Targets, ts)
		}
		out = append(out, us)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
