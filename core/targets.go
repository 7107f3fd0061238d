package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"fastgate/core/config"
)

// Sources of an upstream's target list.
const (
	// SourceConfig: the list in the config.
	SourceConfig = "config"
	// SourceAdmin: set through the admin API; dropped by the next reload.
	SourceAdmin = "admin"
)

var (
	// ErrNoUpstream: SetTargets named an upstream the config does not have.
	ErrNoUpstream = errors.New("core: no such upstream")
	// ErrDiscovered: the admin API tried to change the targets of an
	// upstream that discovery manages.
	ErrDiscovered = errors.New("core: the upstream's targets come from discovery")
)

// targetOverride is an upstream's target list set at run time, in place of
// the config's.
type targetOverride struct {
	targets []config.Target
	source  string
}

// SetTargets replaces the targets of the upstream named upstream with
// targets, over the config's list, and swaps in a snapshot built from the
// current config with that list: the same validated swap as Apply, so
// balancing state, pools, health and metric series are kept for the
// addresses that stay, and requests in flight finish on the targets they
// started on. source names who sets the list: "dns", "etcd", "file" (it
// survives reloads while the upstream keeps a discovery block) or
// SourceAdmin (dropped by the next Apply). An empty list is allowed: the
// upstream's requests then get 503.
//
// It fails with ErrNoUpstream, ErrDiscovered (SourceAdmin on an upstream
// discovery manages) or the targets' config.Errors; on error nothing
// changes.
func (g *Gateway) SetTargets(upstream string, targets []config.Target, source string) error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	u := g.base.Upstreams[upstream]
	if u == nil {
		return fmt.Errorf("%w %q", ErrNoUpstream, upstream)
	}
	if source == SourceAdmin && u.Discovery != nil {
		return fmt.Errorf("%w: upstream %q gets its targets from %s discovery; change them there, or remove its discovery block", ErrDiscovered, upstream, u.Discovery.Type)
	}
	if source != SourceAdmin && (u.Discovery == nil || u.Discovery.Type != source) {
		// A source's set from before a reload that dropped or changed the
		// upstream's discovery block must not overwrite the new config.
		return fmt.Errorf("core: upstream %q: a %s discovery set arrived after a reload changed its discovery block; ignored", upstream, source)
	}
	if err := config.ValidateTargets("targets", targets); err != nil {
		return err
	}
	list := slices.Clone(targets)
	for i := range list {
		if list[i].Weight == 0 {
			list[i].Weight = 1
		}
	}
	prev, had := g.overrides[upstream]
	g.overrides[upstream] = targetOverride{targets: list, source: source}
	old := g.snap.Load()
	if err := g.swap(g.effective(g.base)); err != nil {
		if had {
			g.overrides[upstream] = prev
		} else {
			delete(g.overrides, upstream)
		}
		return err
	}
	added, removed := targetChanges(old.upstreams[upstream], g.snap.Load().upstreams[upstream])
	g.log.Info("upstream targets changed", "upstream", upstream, "source", source,
		"targets", len(list), "added", added, "removed", removed)
	return nil
}

// targetChanges lists the addresses next has that prev has not, and the
// reverse.
func targetChanges(prev, next *Upstream) (added, removed []string) {
	for _, t := range next.targets {
		if prev == nil || !prev.hasTarget(t.addr) {
			added = append(added, t.addr)
		}
	}
	if prev != nil {
		for _, t := range prev.targets {
			if !next.hasTarget(t.addr) {
				removed = append(removed, t.addr)
			}
		}
	}
	return added, removed
}

// Targets returns the upstream's current target list and who set it
// (SourceConfig, SourceAdmin or a discovery type).
func (g *Gateway) Targets(upstream string) ([]config.Target, string, error) {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	u := g.base.Upstreams[upstream]
	if u == nil {
		return nil, "", fmt.Errorf("%w %q", ErrNoUpstream, upstream)
	}
	if o, ok := g.overrides[upstream]; ok {
		return slices.Clone(o.targets), o.source, nil
	}
	return slices.Clone(u.Targets), SourceConfig, nil
}

// keepOverrides returns the runtime target lists that outlive a move to
// cfg: discovery's, for upstreams that still have a discovery block.
// Admin lists are dropped: the config file is the truth after a reload.
func (g *Gateway) keepOverrides(cfg *config.Config) map[string]targetOverride {
	out := make(map[string]targetOverride, len(g.overrides))
	for name, o := range g.overrides {
		if u := cfg.Upstreams[name]; u != nil && u.Discovery != nil && o.source != SourceAdmin {
			out[name] = o
		}
	}
	return out
}

// effective returns base with the runtime target lists in place of the
// config's: base itself when there is none. base is not modified; the
// copy shares everything but the overridden upstreams.
func (g *Gateway) effective(base *config.Config) *config.Config {
	if len(g.overrides) == 0 {
		return base
	}
	c := *base
	c.Upstreams = make(map[string]*config.Upstream, len(base.Upstreams))
	for name, u := range base.Upstreams {
		if o, ok := g.overrides[name]; ok && u != nil {
			cu := *u
			cu.Targets = o.targets
			u = &cu
		}
		c.Upstreams[name] = u
	}
	return &c
}

// WaitDrained waits until no request that began before the upstream's
// current target list took effect can still reach the targets at addrs
// that the list no longer has: the snapshots that had them have retired
// (every request started on them has finished) and the targets have no
// request in flight (streamed responses included). It returns the number
// of requests still in flight on those targets when ctx ends first, with
// ctx's error.
func (g *Gateway) WaitDrained(ctx context.Context, upstream string, addrs []string) (int64, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		n, busy := g.drainingIn(upstream, addrs)
		if !busy {
			return 0, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

// drainingIn reports whether a live snapshot other than the current one
// still has one of the upstream's targets at addrs that the current one
// does not, and the requests in flight on those.
func (g *Gateway) drainingIn(upstream string, addrs []string) (inflight int64, busy bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	cur := g.snap.Load()
	for _, t := range g.drainingTargets(cur, upstream) {
		if len(addrs) == 0 || slices.Contains(addrs, t.addr) {
			inflight += t.lb.InFlight()
			busy = true
		}
	}
	return inflight, busy
}

// drainingTargets returns the targets of the upstream that live snapshots
// older than cur have and cur has not, once each. g.mu must be held.
func (g *Gateway) drainingTargets(cur *Snapshot, upstream string) []*target {
	var out []*target
	now := cur.upstreams[upstream]
	for _, s := range g.live {
		up := s.upstreams[upstream]
		if s == cur || up == nil {
			continue
		}
		for _, t := range up.targets {
			if (now == nil || !now.uses(t)) && !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	// A streamed response may outlive its snapshot: its target stays
	// draining until the stream closes.
	for _, t := range g.leaving[upstream] {
		if t.lb.InFlight() > 0 && (now == nil || !now.uses(t)) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// keepLeaving remembers the targets of old, which is retiring, that cur
// dropped and that still have streamed responses in flight. g.mu must be
// held.
func (g *Gateway) keepLeaving(old, cur *Snapshot) {
	for name, up := range old.upstreams {
		now := cur.upstreams[name]
		for _, t := range up.targets {
			if t.lb.InFlight() > 0 && (now == nil || !now.uses(t)) && !slices.Contains(g.leaving[name], t) {
				g.leaving[name] = append(g.leaving[name], t)
			}
		}
	}
	// Forget those that have finished.
	for name, ts := range g.leaving {
		ts = slices.DeleteFunc(ts, func(t *target) bool { return t.lb.InFlight() == 0 })
		if len(ts) == 0 {
			delete(g.leaving, name)
		} else {
			g.leaving[name] = ts
		}
	}
}
