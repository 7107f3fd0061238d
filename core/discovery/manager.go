package discovery

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"fastgate/core/config"
)

// NewSourceFunc makes the Source of one upstream's discovery block.
type NewSourceFunc func(upstream string, d *config.Discovery) (Source, error)

// Manager runs one Source per upstream with a discovery block and applies
// what they find through its Updater: a set equal to the last applied one
// (in any order) is skipped; an empty set is applied only with
// allow_empty, else it counts as an error and the last set keeps serving;
// an Updater error is logged and counted.
//
// Sync, WaitReady and Close are safe for concurrent use. Sync never
// blocks on the network: sources run, and apply their sets, in their own
// goroutines.
type Manager struct {
	up        Updater
	log       *slog.Logger
	set       *metrics.Set
	newSource NewSourceFunc

	mu     sync.Mutex
	runs   map[string]*run // by upstream name
	closed bool
	// applyMu serializes the applies of each upstream across the runs
	// that replace one another, by upstream name: a stopped run checks it
	// is still live under it, so it never applies after its successor.
	applyMu map[string]*sync.Mutex
	wg      sync.WaitGroup
}

// NewManager returns a Manager applying sets to u, logging to log and
// counting in set (fastgate_discovery_* series). newSource nil means
// DefaultSource(log).
func NewManager(u Updater, log *slog.Logger, set *metrics.Set, newSource NewSourceFunc) *Manager {
	if log == nil {
		log = slog.Default()
	}
	if newSource == nil {
		newSource = DefaultSource(log)
	}
	return &Manager{up: u, log: log, set: set, newSource: newSource,
		runs: make(map[string]*run), applyMu: make(map[string]*sync.Mutex)}
}

// DefaultSource makes the sources of this package by discovery type: dns,
// file and etcd.
func DefaultSource(log *slog.Logger) NewSourceFunc {
	return func(upstream string, d *config.Discovery) (Source, error) {
		switch d.Type {
		case config.DiscoveryDNS:
			return newDNSSource(d), nil
		case config.DiscoveryFile:
			return newFileSource(d), nil
		case config.DiscoveryEtcd:
			return newEtcdSource(upstream, d, log)
		}
		return nil, fmt.Errorf("discovery: upstream %q: unknown type %q; want dns, etcd or file", upstream, d.Type)
	}
}

// run is one running source of one upstream.
type run struct {
	m          *Manager
	upstream   string
	typ        string
	fp         string
	allowEmpty bool
	cancel     context.CancelFunc
	ctx        context.Context
	applyMu    *sync.Mutex

	ready     chan struct{} // closed on the first answer or failure
	readyOnce sync.Once

	// last is the last applied set, sorted; guarded by applyMu.
	last    []config.Target
	applied bool

	updates, errs *metrics.Counter
	count, stamp  *metrics.Gauge
	// failing says the last report was an error; guarded by applyMu.
	failing bool
}

// Sync starts a source for every upstream of cfg with a discovery block,
// keeps those running whose settings are unchanged and stops the others.
// It does not block: call it from core.Options.OnApply.
func (m *Manager) Sync(cfg *config.Config) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for name, r := range m.runs {
		u := cfg.Upstreams[name]
		if u != nil && u.Discovery != nil && u.Discovery.Fingerprint() == r.fp {
			continue
		}
		r.stop()
		delete(m.runs, name)
		if u == nil || u.Discovery == nil {
			m.unregister(name, r.typ, true)
		} else if u.Discovery.Type != r.typ {
			m.unregister(name, r.typ, false)
		}
	}
	for _, name := range sortedKeys(cfg.Upstreams) {
		u := cfg.Upstreams[name]
		if u == nil || u.Discovery == nil || m.runs[name] != nil {
			continue
		}
		m.start(name, u.Discovery)
	}
}

// start runs the source of upstream; m.mu is held.
func (m *Manager) start(upstream string, d *config.Discovery) {
	mu := m.applyMu[upstream]
	if mu == nil {
		mu = new(sync.Mutex)
		m.applyMu[upstream] = mu
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{m: m, upstream: upstream, typ: d.Type, fp: d.Fingerprint(), allowEmpty: d.AllowEmpty,
		ctx: ctx, cancel: cancel, applyMu: mu, ready: make(chan struct{})}
	r.updates = m.set.GetOrCreateCounter(fmt.Sprintf(`fastgate_discovery_updates_total{upstream=%q,type=%q}`, upstream, d.Type))
	r.errs = m.set.GetOrCreateCounter(fmt.Sprintf(`fastgate_discovery_errors_total{upstream=%q,type=%q}`, upstream, d.Type))
	r.count = m.set.GetOrCreateGauge(fmt.Sprintf(`fastgate_discovery_targets{upstream=%q}`, upstream), nil)
	r.stamp = m.set.GetOrCreateGauge(fmt.Sprintf(`fastgate_discovery_last_success_timestamp_seconds{upstream=%q}`, upstream), nil)
	m.runs[upstream] = r
	src, err := m.newSource(upstream, d)
	if err != nil {
		// Validation makes this unreachable for the built-in types; a
		// failing factory still must not stop the others.
		m.log.Error("discovery source not started", "upstream", upstream, "type", d.Type, "error", err.Error())
		r.errs.Inc()
		r.markReady()
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer r.markReady()
		src.Run(ctx, r.emit, r.report)
	}()
}

// unregister removes the series of upstream's source of type typ, and its
// gauges too when all is set (the upstream lost its discovery); m.mu is
// held.
func (m *Manager) unregister(upstream, typ string, all bool) {
	m.set.UnregisterMetric(fmt.Sprintf(`fastgate_discovery_updates_total{upstream=%q,type=%q}`, upstream, typ))
	m.set.UnregisterMetric(fmt.Sprintf(`fastgate_discovery_errors_total{upstream=%q,type=%q}`, upstream, typ))
	if all {
		m.set.UnregisterMetric(fmt.Sprintf(`fastgate_discovery_targets{upstream=%q}`, upstream))
		m.set.UnregisterMetric(fmt.Sprintf(`fastgate_discovery_last_success_timestamp_seconds{upstream=%q}`, upstream))
		// applyMu[upstream] stays: a stopped run may still hold it, and
		// the upstream may come back.
	}
}

// WaitReady waits until every running source has given its first answer
// (applied) or its first failure, or ctx ends; then it returns an error
// naming the upstreams still waiting.
func (m *Manager) WaitReady(ctx context.Context) error {
	m.mu.Lock()
	runs := make([]*run, 0, len(m.runs))
	for _, r := range m.runs {
		runs = append(runs, r)
	}
	m.mu.Unlock()
	var waiting []string
	for _, r := range runs {
		select {
		case <-r.ready:
		case <-ctx.Done():
			// Both may be ready: an answer counts.
			select {
			case <-r.ready:
			default:
				waiting = append(waiting, r.upstream)
			}
		}
	}
	if len(waiting) == 0 {
		return nil
	}
	slices.Sort(waiting)
	return fmt.Errorf("discovery: no answer yet for upstreams %s: %w", strings.Join(waiting, ", "), ctx.Err())
}

// Close stops every source and waits for them to return; a later Sync
// does nothing.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	for name, r := range m.runs {
		r.stop()
		delete(m.runs, name)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

func (r *run) stop() { r.cancel() }

func (r *run) markReady() { r.readyOnce.Do(func() { close(r.ready) }) }

// emit applies a set found by the source.
func (r *run) emit(targets []config.Target) {
	defer r.markReady()
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if r.ctx.Err() != nil {
		return // stopped: a successor, if any, owns the upstream now
	}
	r.recovered()
	if len(targets) == 0 && !r.allowEmpty {
		r.errs.Inc()
		r.m.log.Warn("discovery found no targets; the last ones keep serving (set allow_empty to empty the upstream)",
			"upstream", r.upstream, "type", r.typ, "targets", len(r.last))
		return
	}
	r.stamp.Set(float64(time.Now().UnixNano()) / 1e9)
	set := normalize(targets)
	if r.applied && slices.Equal(set, r.last) {
		return
	}
	if err := r.m.up.SetTargets(r.upstream, set, r.typ); err != nil {
		r.errs.Inc()
		r.m.log.Error("discovered targets rejected; the last ones keep serving", "upstream", r.upstream, "type", r.typ, "error", err.Error())
		return
	}
	r.last, r.applied = set, true
	r.updates.Inc()
	r.count.Set(float64(len(set)))
	r.m.log.Debug("discovered targets applied", "upstream", r.upstream, "type", r.typ, "targets", len(set))
}

// report records a failure of the source, or its recovery (nil).
func (r *run) report(err error) {
	if err == nil {
		return // recovery is logged with the next answer
	}
	defer r.markReady()
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if r.ctx.Err() != nil {
		return // stopped: failures of a stopped source do not count
	}
	r.failing = true
	r.errs.Inc()
	r.m.log.Warn("discovery failed; the last targets keep serving", "upstream", r.upstream, "type", r.typ, "error", err.Error())
}

// recovered logs the first answer after failures; applyMu is held.
func (r *run) recovered() {
	if r.failing {
		r.failing = false
		r.m.log.Info("discovery recovered", "upstream", r.upstream, "type", r.typ)
	}
}

// normalize returns a sorted copy of targets with weight 0 made 1, so
// sets compare regardless of order.
func normalize(targets []config.Target) []config.Target {
	set := make([]config.Target, len(targets))
	for i, t := range targets {
		set[i] = t
		if set[i].Weight == 0 {
			set[i].Weight = 1
		}
	}
	slices.SortFunc(set, func(a, b config.Target) int {
		return cmp.Or(strings.Compare(a.URL, b.URL), cmp.Compare(a.Weight, b.Weight))
	})
	return set
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
