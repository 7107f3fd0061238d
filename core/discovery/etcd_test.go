package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"fastgate/core/config"
	"fastgate/core/discovery/etcdtest"
)

// etcdWait bounds the wait for one expected emit or report. Generous: the
// machine is shared; the tests wait on events, not on time.
const etcdWait = 15 * time.Second

func TestParseEtcdTarget(t *testing.T) {
	f := func(v string, want config.Target, wantErr string) {
		t.Helper()
		got, err := parseEtcdTarget([]byte(v))
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("parseEtcdTarget(%q): error got %v; want one containing %q", v, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("parseEtcdTarget(%q) got %+v, %v; want %+v, nil", v, got, err, want)
		}
	}
	f(`http://10.0.0.5:8080`, config.Target{URL: "http://10.0.0.5:8080"}, "")
	f(" http://10.0.0.5:8080\n", config.Target{URL: "http://10.0.0.5:8080"}, "")
	f(`{"url": "http://10.0.0.5:8080", "weight": 3}`, config.Target{URL: "http://10.0.0.5:8080", Weight: 3}, "")
	f(`{"url": "http://10.0.0.5:8080"}`, config.Target{URL: "http://10.0.0.5:8080"}, "")
	f(``, config.Target{}, "empty value")
	f(`{"url": "http://10.0.0.5:8080", "wieght": 3}`, config.Target{}, "wieght")
	f(`{"url": 5}`, config.Target{}, "is not JSON")
}

// etcdRun is one etcd source running in a test, with its emits and
// reports on channels.
type etcdRun struct {
	t       *testing.T
	src     *etcdSource
	emits   chan []config.Target
	reports chan error
	last    []config.Target
}

func newTestEtcdSource(t *testing.T, endpoint, prefix string) *etcdSource {
	t.Helper()
	d := &config.Discovery{Type: config.DiscoveryEtcd, Endpoints: []string{endpoint}, Prefix: prefix,
		Scheme: "http", Timeout: config.DefaultDiscoveryTimeout}
	src, err := newEtcdSource("users", d, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return src.(*etcdSource)
}

// run starts src until the test ends.
func runEtcdSource(t *testing.T, src *etcdSource) *etcdRun {
	r := &etcdRun{t: t, src: src, emits: make(chan []config.Target, 100), reports: make(chan error, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		src.Run(ctx, func(ts []config.Target) { r.emits <- slices.Clone(ts) }, func(err error) { r.reports <- err })
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

// waitSet waits until the source emits the set of urls (weight 0 unless
// "url*w").
func (r *etcdRun) waitSet(urls ...string) {
	r.t.Helper()
	want := targets(urls...)
	timer := time.NewTimer(etcdWait)
	defer timer.Stop()
	for !slices.Equal(r.last, want) {
		select {
		case r.last = <-r.emits:
		case <-timer.C:
			r.t.Fatalf("emitted set got %+v; want %+v (waited %s)", r.last, want, etcdWait)
		}
	}
}

// waitReport waits for a report whose text contains want; "" waits for a
// nil report.
func (r *etcdRun) waitReport(want string) {
	r.t.Helper()
	timer := time.NewTimer(etcdWait)
	defer timer.Stop()
	var got []string
	for {
		select {
		case err := <-r.reports:
			if err == nil && want == "" || err != nil && want != "" && strings.Contains(err.Error(), want) {
				return
			}
			got = append(got, fmt.Sprint(err))
		case <-timer.C:
			r.t.Fatalf("reports got %q; want one with %q (\"\": nil)", got, want)
		}
	}
}

func targets(urls ...string) []config.Target {
	out := make([]config.Target, 0, len(urls))
	for _, u := range urls {
		t := config.Target{URL: u}
		if i := strings.LastIndexByte(u, '*'); i > 0 {
			t.URL = u[:i]
			fmt.Sscan(u[i+1:], &t.Weight) //nolint:errcheck // test literal
		}
		out = append(out, t)
	}
	return out
}

// etcdClient is a client to the test's etcd.
func etcdClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func put(t *testing.T, cli *clientv3.Client, key, value string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), etcdWait)
	defer cancel()
	resp, err := cli.Put(ctx, key, value)
	if err != nil {
		t.Fatalf("etcd put %s: %s", key, err)
	}
	return resp.Header.Revision
}

func del(t *testing.T, cli *clientv3.Client, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), etcdWait)
	defer cancel()
	if _, err := cli.Delete(ctx, key); err != nil {
		t.Fatalf("etcd delete %s: %s", key, err)
	}
}

func TestEtcdSourceInitialSetAndEvents(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv.Endpoint())
	const p = "/fastgate/upstreams/users/"
	put(t, cli, p+"a", `{"url": "http://10.0.0.1:8080", "weight": 2}`)
	put(t, cli, p+"b", "http://10.0.0.2:8080")
	put(t, cli, "/fastgate/upstreams/usersX", "http://10.9.9.9:1") // another prefix's neighbour: not ours
	r := runEtcdSource(t, newTestEtcdSource(t, srv.Endpoint(), p))
	r.waitSet("http://10.0.0.1:8080*2", "http://10.0.0.2:8080")

	put(t, cli, p+"c", "http://10.0.0.3:8080")
	r.waitSet("http://10.0.0.1:8080*2", "http://10.0.0.2:8080", "http://10.0.0.3:8080")
	put(t, cli, p+"a", `{"url": "http://10.0.0.1:8080", "weight": 5}`)
	r.waitSet("http://10.0.0.1:8080*5", "http://10.0.0.2:8080", "http://10.0.0.3:8080")
	del(t, cli, p+"b")
	r.waitSet("http://10.0.0.1:8080*5", "http://10.0.0.3:8080")

	// Emptying the prefix keeps the last set (no allow_empty) and says so.
	del(t, cli, p+"a")
	r.waitSet("http://10.0.0.3:8080")
	del(t, cli, p+"c")
	r.waitReport("holds no valid target; keeping the last set")
	select {
	case got := <-r.emits:
		t.Fatalf("emptied prefix: emitted %+v; want no emit", got)
	default:
	}
	put(t, cli, p+"d", "http://10.0.0.4:8080")
	r.waitSet("http://10.0.0.4:8080")
	r.waitReport("")
}

func TestEtcdSourceAllowEmpty(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv.Endpoint())
	const p = "/svc/"
	put(t, cli, p+"a", "http://10.0.0.1:8080")
	src := newTestEtcdSource(t, srv.Endpoint(), p)
	src.d.AllowEmpty = true
	r := runEtcdSource(t, src)
	r.waitSet("http://10.0.0.1:8080")
	del(t, cli, p+"a")
	timer := time.NewTimer(etcdWait)
	defer timer.Stop()
	select {
	case got := <-r.emits:
		if len(got) != 0 {
			t.Fatalf("allow_empty, prefix emptied: emitted %+v; want []", got)
		}
	case <-timer.C:
		t.Fatalf("allow_empty, prefix emptied: no emit within %s; want []", etcdWait)
	}
}

func TestEtcdSourceInvalidValues(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv.Endpoint())
	const p = "/svc/"
	put(t, cli, p+"good", "http://10.0.0.1:8080")
	put(t, cli, p+"junk", "not a url")
	put(t, cli, p+"dup", `{"url": "http://10.0.0.1:8080"}`) // sorts before "good"
	r := runEtcdSource(t, newTestEtcdSource(t, srv.Endpoint(), p))
	r.waitSet("http://10.0.0.1:8080")
	r.waitReport(`key "/svc/junk"`)

	// A bad put leaves the rest serving and is reported with its key.
	put(t, cli, p+"two", `{"url": "ftp://10.0.0.2:21"}`)
	r.waitReport(`key "/svc/two"`)
	put(t, cli, p+"two", `{"url": "http://10.0.0.2:8080"}`)
	r.waitSet("http://10.0.0.1:8080", "http://10.0.0.2:8080")

	// Fixing every key clears the failure.
	del(t, cli, p+"junk")
	del(t, cli, p+"dup")
	r.waitReport("")
}

func TestEtcdSourceUnreachable(t *testing.T) {
	src := newTestEtcdSource(t, "127.0.0.1:1", "/svc/")
	src.d.Timeout = config.Duration(200 * time.Millisecond)
	r := runEtcdSource(t, src)
	r.waitReport("127.0.0.1:1")
	select {
	case got := <-r.emits:
		t.Fatalf("unreachable etcd: emitted %+v; want nothing", got)
	default:
	}
}

func TestEtcdSourceRestart(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv.Endpoint())
	const p = "/svc/"
	put(t, cli, p+"a", "http://10.0.0.1:8080")
	r := runEtcdSource(t, newTestEtcdSource(t, srv.Endpoint(), p))
	r.waitSet("http://10.0.0.1:8080")

	srv.Stop()
	srv.Restart() // same data directory: keys and revisions kept
	// Written as soon as etcd is back, most likely before the source's
	// watch has reconnected: it must see them all the same.
	put(t, cli, p+"b", "http://10.0.0.2:8080")
	del(t, cli, p+"a")
	r.waitSet("http://10.0.0.2:8080")
	put(t, cli, p+"c", "http://10.0.0.3:8080")
	r.waitSet("http://10.0.0.2:8080", "http://10.0.0.3:8080")
}

func TestEtcdSourceCompaction(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := etcdClient(t, srv.Endpoint())
	const p = "/svc/"
	old := put(t, cli, p+"a", "http://10.0.0.1:8080")
	for i := range 50 {
		put(t, cli, p+"b", fmt.Sprintf(`{"url": "http://10.0.0.2:8080", "weight": %d}`, i+1))
	}
	put(t, cli, p+"c", "http://10.0.0.3:8080")
	del(t, cli, p+"a")
	last := put(t, cli, p+"d", "http://10.0.0.4:8080")
	ctx, cancel := context.WithTimeout(context.Background(), etcdWait)
	defer cancel()
	if _, err := cli.Compact(ctx, last, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact: %s", err)
	}

	// The watcher resumes from a revision etcd no longer has, as one that
	// fell behind does: it must read the prefix again, not replay.
	src := newTestEtcdSource(t, srv.Endpoint(), p)
	src.resumeRev = old
	r := runEtcdSource(t, src)
	r.waitSet("http://10.0.0.2:8080*50", "http://10.0.0.3:8080", "http://10.0.0.4:8080")
	put(t, cli, p+"e", "http://10.0.0.5:8080")
	r.waitSet("http://10.0.0.2:8080*50", "http://10.0.0.3:8080", "http://10.0.0.4:8080", "http://10.0.0.5:8080")
	if got := src.resyncs.Load(); got < 1 {
		t.Fatalf("resyncs after a compacted watch got %d; want >= 1", got)
	}
}
