package discovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"fastgate/core/config"
)

// testWait bounds every wait of this package's tests. Generous: the
// machine is shared.
const testWait = 10 * time.Second

// fakeSource is a Source the test drives: each op runs inside Run, in
// Run's goroutine, and returns once the manager has handled it.
type fakeSource struct {
	ops  chan func(emit func([]config.Target), report func(error))
	acks chan struct{}
	ctx  chan context.Context // Run's ctx, once started
	done chan struct{}        // closed when Run returns
}

func newFakeSource() *fakeSource {
	return &fakeSource{ops: make(chan func(func([]config.Target), func(error))), acks: make(chan struct{}),
		ctx: make(chan context.Context, 1), done: make(chan struct{})}
}

func (f *fakeSource) Run(ctx context.Context, emit func([]config.Target), report func(error)) {
	defer close(f.done)
	f.ctx <- ctx
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-f.ops:
			op(emit, report)
			f.acks <- struct{}{}
		}
	}
}

func (f *fakeSource) do(t *testing.T, op func(emit func([]config.Target), report func(error))) {
	t.Helper()
	select {
	case f.ops <- op:
	case <-time.After(testWait):
		t.Fatal("source not running")
	}
	<-f.acks
}

func (f *fakeSource) emit(t *testing.T, urls ...string) {
	t.Helper()
	f.do(t, func(emit func([]config.Target), _ func(error)) { emit(mkTargets(urls...)) })
}

func (f *fakeSource) report(t *testing.T, err error) {
	t.Helper()
	f.do(t, func(_ func([]config.Target), report func(error)) { report(err) })
}

// stopped waits until Run returned.
func (f *fakeSource) stopped(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(testWait):
		t.Fatal("source still running; want it stopped")
	}
}

// mkTargets makes targets of "url" or "url*weight".
func mkTargets(urls ...string) []config.Target {
	out := make([]config.Target, 0, len(urls))
	for _, u := range urls {
		url, w, _ := strings.Cut(u, "*")
		weight := 0
		fmt.Sscan(w, &weight) //nolint:errcheck // no weight: 0
		out = append(out, config.Target{URL: url, Weight: weight})
	}
	return out
}

// fakeUpdater records SetTargets calls; fail makes them fail.
type fakeUpdater struct {
	mu    sync.Mutex
	calls []string // "upstream source url*weight,..."
	fail  error
}

func (u *fakeUpdater) SetTargets(upstream string, targets []config.Target, source string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fail != nil {
		return u.fail
	}
	var parts []string
	for _, t := range targets {
		parts = append(parts, fmt.Sprintf("%s*%d", t.URL, t.Weight))
	}
	u.calls = append(u.calls, upstream+" "+source+" "+strings.Join(parts, ","))
	return nil
}

func (u *fakeUpdater) setFail(err error) {
	u.mu.Lock()
	u.fail = err
	u.mu.Unlock()
}

func (u *fakeUpdater) check(t *testing.T, want ...string) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if !slices.Equal(u.calls, want) {
		t.Fatalf("SetTargets calls got\n%s\nwant\n%s", strings.Join(u.calls, "\n"), strings.Join(want, "\n"))
	}
}

// managerTest is a Manager over fake sources, one per upstream, made
// anew each time the manager asks.
type managerTest struct {
	m   *Manager
	up  *fakeUpdater
	set *metrics.Set

	mu      sync.Mutex
	sources map[string][]*fakeSource // by upstream, in creation order
}

func newManagerTest(t *testing.T) *managerTest {
	mt := &managerTest{up: &fakeUpdater{}, set: metrics.NewSet(), sources: map[string][]*fakeSource{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mt.m = NewManager(mt.up, log, mt.set, func(upstream string, d *config.Discovery) (Source, error) {
		if d.Name == "broken" {
			return nil, errors.New("discovery: broken on purpose")
		}
		mt.mu.Lock()
		defer mt.mu.Unlock()
		s := newFakeSource()
		mt.sources[upstream] = append(mt.sources[upstream], s)
		return s, nil
	})
	t.Cleanup(func() { mt.m.Close() })
	return mt
}

// source returns the i-th source made for upstream.
func (mt *managerTest) source(t *testing.T, upstream string, i int) *fakeSource {
	t.Helper()
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if len(mt.sources[upstream]) <= i {
		t.Fatalf("upstream %s: got %d sources; want at least %d", upstream, len(mt.sources[upstream]), i+1)
	}
	return mt.sources[upstream][i]
}

func (mt *managerTest) sourceCount(upstream string) int {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return len(mt.sources[upstream])
}

// metric returns the value of the series name, "" when absent.
func (mt *managerTest) metric(name string) string {
	var b bytes.Buffer
	mt.set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func (mt *managerTest) checkMetric(t *testing.T, name, want string) {
	t.Helper()
	if got := mt.metric(name); got != want {
		t.Fatalf("%s got %q; want %q", name, got, want)
	}
}

// discoveryConfig is a config whose upstreams have discovery blocks given
// as "name=type:setting" (setting goes to Name, or Path for file);
// "name=" is an upstream without discovery.
func discoveryConfig(ups ...string) *config.Config {
	cfg := &config.Config{Upstreams: map[string]*config.Upstream{}}
	for _, u := range ups {
		name, spec, _ := strings.Cut(u, "=")
		up := &config.Upstream{}
		if spec != "" {
			typ, setting, _ := strings.Cut(spec, ":")
			d := &config.Discovery{Type: typ}
			switch typ {
			case config.DiscoveryFile:
				d.Path = setting
			default:
				d.Name = setting
			}
			if strings.HasSuffix(setting, "+empty") {
				d.AllowEmpty = true
			}
			up.Discovery = d
		}
		cfg.Upstreams[name] = up
	}
	return cfg
}

func TestManagerApplies(t *testing.T) {
	mt := newManagerTest(t)
	mt.m.Sync(discoveryConfig("users=dns:users", "static="))
	src := mt.source(t, "users", 0)
	src.emit(t, "http://10.0.0.2:80*2", "http://10.0.0.1:80")
	mt.up.check(t, "users dns http://10.0.0.1:80*1,http://10.0.0.2:80*2")
	// The same set in another order, weight 0 as 1: skipped.
	src.emit(t, "http://10.0.0.1:80*1", "http://10.0.0.2:80*2")
	mt.up.check(t, "users dns http://10.0.0.1:80*1,http://10.0.0.2:80*2")
	mt.checkMetric(t, `fastgate_discovery_updates_total{upstream="users",type="dns"}`, "1")
	mt.checkMetric(t, `fastgate_discovery_targets{upstream="users"}`, "2")
	if v := mt.metric(`fastgate_discovery_last_success_timestamp_seconds{upstream="users"}`); v == "" || v == "0" {
		t.Fatalf("last success timestamp got %q; want the time of the answer", v)
	}
	// An empty set without allow_empty: counted, not applied.
	src.emit(t)
	mt.up.check(t, "users dns http://10.0.0.1:80*1,http://10.0.0.2:80*2")
	mt.checkMetric(t, `fastgate_discovery_errors_total{upstream="users",type="dns"}`, "1")
	// A failure: counted, nothing applied.
	src.report(t, errors.New("discovery: dns: SERVFAIL"))
	src.report(t, nil)
	mt.checkMetric(t, `fastgate_discovery_errors_total{upstream="users",type="dns"}`, "2")
	// A change applies.
	src.emit(t, "http://10.0.0.3:80")
	mt.up.check(t, "users dns http://10.0.0.1:80*1,http://10.0.0.2:80*2", "users dns http://10.0.0.3:80*1")
	mt.checkMetric(t, `fastgate_discovery_updates_total{upstream="users",type="dns"}`, "2")
	mt.checkMetric(t, `fastgate_discovery_targets{upstream="users"}`, "1")
	if n := mt.sourceCount("static"); n != 0 {
		t.Fatalf("upstream without discovery: got %d sources; want 0", n)
	}
}

func TestManagerAllowEmpty(t *testing.T) {
	mt := newManagerTest(t)
	mt.m.Sync(discoveryConfig("users=file:/x+empty"))
	src := mt.source(t, "users", 0)
	src.emit(t, "http://10.0.0.1:80")
	src.emit(t)
	mt.up.check(t, "users file http://10.0.0.1:80*1", "users file ")
	mt.checkMetric(t, `fastgate_discovery_targets{upstream="users"}`, "0")
	mt.checkMetric(t, `fastgate_discovery_errors_total{upstream="users",type="file"}`, "0")
}

func TestManagerUpdaterError(t *testing.T) {
	mt := newManagerTest(t)
	mt.m.Sync(discoveryConfig("users=dns:users"))
	src := mt.source(t, "users", 0)
	mt.up.setFail(errors.New("targets[0].url: bad"))
	src.emit(t, "http://10.0.0.1:80")
	mt.checkMetric(t, `fastgate_discovery_errors_total{upstream="users",type="dns"}`, "1")
	mt.checkMetric(t, `fastgate_discovery_updates_total{upstream="users",type="dns"}`, "0")
	// Not applied, so the same set is tried again.
	mt.up.setFail(nil)
	src.emit(t, "http://10.0.0.1:80")
	mt.up.check(t, "users dns http://10.0.0.1:80*1")
}

func TestManagerSync(t *testing.T) {
	mt := newManagerTest(t)
	mt.m.Sync(discoveryConfig("users=dns:users", "orders=dns:orders", "items=dns:items"))
	users, orders, items := mt.source(t, "users", 0), mt.source(t, "orders", 0), mt.source(t, "items", 0)
	users.emit(t, "http://10.0.0.1:80")
	orders.emit(t, "http://10.0.0.2:80")
	items.emit(t, "http://10.0.0.3:80")
	// users unchanged; orders' settings changed; items lost its discovery.
	mt.m.Sync(discoveryConfig("users=dns:users", "orders=dns:orders2", "items="))
	orders.stopped(t)
	items.stopped(t)
	if n := mt.sourceCount("users"); n != 1 {
		t.Fatalf("unchanged upstream: got %d sources; want the first kept", n)
	}
	select {
	case <-users.done:
		t.Fatal("unchanged upstream: its source stopped; want it kept")
	default:
	}
	mt.checkMetric(t, `fastgate_discovery_targets{upstream="items"}`, "")
	mt.checkMetric(t, `fastgate_discovery_updates_total{upstream="items",type="dns"}`, "")
	// The replacement of orders applies its first answer even when equal
	// to the last one of its predecessor.
	orders2 := mt.source(t, "orders", 1)
	orders2.emit(t, "http://10.0.0.2:80")
	mt.up.check(t, "users dns http://10.0.0.1:80*1", "orders dns http://10.0.0.2:80*1",
		"items dns http://10.0.0.3:80*1", "orders dns http://10.0.0.2:80*1")
	// A type change drops the series of the old type.
	mt.m.Sync(discoveryConfig("users=file:/t.yaml"))
	users.stopped(t)
	mt.source(t, "users", 1).emit(t, "http://10.0.0.1:80")
	mt.checkMetric(t, `fastgate_discovery_updates_total{upstream="users",type="dns"}`, "")
	mt.checkMetric(t, `fastgate_discovery_updates_total{upstream="users",type="file"}`, "1")
	mt.m.Close()
	mt.source(t, "users", 1).stopped(t)
	// After Close, Sync starts nothing.
	mt.m.Sync(discoveryConfig("more=dns:more"))
	if n := mt.sourceCount("more"); n != 0 {
		t.Fatalf("Sync after Close: got %d sources; want 0", n)
	}
}

// A stopped source never applies: its successor owns the upstream.
func TestManagerStoppedSourceDoesNotApply(t *testing.T) {
	mt := newManagerTest(t)
	mt.m.Sync(discoveryConfig("users=dns:users"))
	old := mt.source(t, "users", 0)
	var emit func([]config.Target)
	var report func(error)
	old.do(t, func(e func([]config.Target), r func(error)) { emit, report = e, r })
	mt.m.Sync(discoveryConfig("users=dns:users2"))
	old.stopped(t)
	emit(mkTargets("http://10.0.0.9:80"))
	report(errors.New("late"))
	mt.up.check(t)
	mt.checkMetric(t, `fastgate_discovery_errors_total{upstream="users",type="dns"}`, "0")
}

func TestManagerWaitReady(t *testing.T) {
	mt := newManagerTest(t)
	mt.m.Sync(discoveryConfig("users=dns:users", "orders=dns:orders", "items=dns:broken"))
	users, orders := mt.source(t, "users", 0), mt.source(t, "orders", 0)
	users.emit(t, "http://10.0.0.1:80")
	// orders has not answered: WaitReady gives up when ctx ends, naming it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := mt.m.WaitReady(ctx)
	if err == nil || !strings.Contains(err.Error(), "no answer yet for upstreams orders:") {
		t.Fatalf("WaitReady with orders silent got %v; want an error naming orders alone", err)
	}
	// A failure is an answer too.
	orders.report(t, errors.New("discovery: dns: timeout"))
	ctx, cancel = context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := mt.m.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady after every source answered: %s", err)
	}
	mt.checkMetric(t, `fastgate_discovery_errors_total{upstream="items",type="dns"}`, "1")
}
