package reload

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/coretest"
	"fastgate/core/discovery/etcdtest"
)

// etcdWait bounds one wait for a change to show. Generous: the machine is
// shared; the tests wait on state, not on time.
const etcdWait = 15 * time.Second

func TestParseEtcdURL(t *testing.T) {
	f := func(s string, want EtcdURL) {
		t.Helper()
		got, err := ParseEtcdURL(s)
		if err != nil {
			t.Fatalf("ParseEtcdURL(%q): %s", s, err)
		}
		if strings.Join(got.Endpoints, ",") != strings.Join(want.Endpoints, ",") || got.Key != want.Key ||
			got.Username != want.Username || got.Password != want.Password {
			t.Fatalf("ParseEtcdURL(%q) got %+v; want %+v", s, got, want)
		}
	}
	f("etcd://127.0.0.1:2379/fastgate/config", EtcdURL{Endpoints: []string{"127.0.0.1:2379"}, Key: "/fastgate/config"})
	f("etcd://a:2379,b:22379/k", EtcdURL{Endpoints: []string{"a:2379", "b:22379"}, Key: "/k"})
	f("etcd://[::1]:2379/k", EtcdURL{Endpoints: []string{"[::1]:2379"}, Key: "/k"})
	f("etcd://gw:s3cret@a:2379/k", EtcdURL{Endpoints: []string{"a:2379"}, Key: "/k", Username: "gw", Password: "s3cret"})

	bad := func(s, want string) {
		t.Helper()
		_, err := ParseEtcdURL(s)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "etcd://127.0.0.1:2379/fastgate/config") {
			t.Fatalf("ParseEtcdURL(%q): error got %v; want one with %q and an example", s, err, want)
		}
	}
	bad("http://127.0.0.1:2379/k", "want etcd://")
	bad("etcd:///k", "no etcd endpoint")
	bad("etcd://127.0.0.1/k", `endpoint "127.0.0.1"`)
	bad("etcd://127.0.0.1:0/k", `endpoint "127.0.0.1:0"`)
	bad("etcd://127.0.0.1:2379,/k", `endpoint ""`)
	bad("etcd://127.0.0.1:2379", `key "/"`)
	bad("etcd://127.0.0.1:2379/", `key "/"`)
	bad("etcd://127.0.0.1:2379/a/", `key "/a/"`)
	bad("etcd://gw@127.0.0.1:2379/a", "user:password@")
	if strings.Contains(EtcdURL{Endpoints: []string{"a:1"}, Key: "/k", Username: "u", Password: "p"}.String(), "p@") {
		t.Fatalf("EtcdURL.String shows the password")
	}
}

func TestIsEtcdURL(t *testing.T) {
	f := func(s string, want bool) {
		t.Helper()
		if got := IsEtcdURL(s); got != want {
			t.Fatalf("IsEtcdURL(%q) got %v; want %v", s, got, want)
		}
	}
	f("etcd://a:1/k", true)
	f("gateway.yaml", false)
	f("./etcd://x", false)
}

// configYAML is a config whose only route is named route.
func configYAML(route string) string {
	return `
upstreams:
  u: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - name: ` + route + `
    match: {path: "/"}
    upstream: u
`
}

type etcdFixture struct {
	t   *testing.T
	srv *etcdtest.Server
	cli *clientv3.Client
	loc EtcdURL
}

func newEtcdFixture(t *testing.T) *etcdFixture {
	srv := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &etcdFixture{t: t, srv: srv, cli: cli, loc: EtcdURL{Endpoints: []string{srv.Endpoint()}, Key: "/fastgate/config"}}
}

func (f *etcdFixture) put(key, value string) int64 {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), etcdWait)
	defer cancel()
	resp, err := f.cli.Put(ctx, key, value)
	if err != nil {
		f.t.Fatalf("etcd put %s: %s", key, err)
	}
	return resp.Header.Revision
}

// status reads the node's status key; ok is false when there is none.
func (f *etcdFixture) status(node string) (st Status, ok bool) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), etcdWait)
	defer cancel()
	resp, err := f.cli.Get(ctx, StatusKey(f.loc.Key, node))
	if err != nil {
		f.t.Fatalf("etcd get status: %s", err)
	}
	if len(resp.Kvs) == 0 {
		return st, false
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		f.t.Fatalf("status %q: %s", resp.Kvs[0].Value, err)
	}
	return st, true
}

// waitStatus waits until the node's status is of revision rev.
func (f *etcdFixture) waitStatus(node string, rev int64) Status {
	f.t.Helper()
	var st Status
	for deadline := time.Now().Add(etcdWait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st, _ = f.status(node); st.Revision == rev {
			return st
		}
	}
	f.t.Fatalf("status of node %s got %+v; want revision %d", node, st, rev)
	return st
}

// startWatching serves the config in etcd with a gateway that reloads it
// from there.
func (f *etcdFixture) startWatching(node string) (*coretest.Gateway, *Etcd) {
	f.t.Helper()
	e, err := NewEtcd(f.loc)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { e.Close() })
	d := config.BuiltinDefaults()
	cfg, err := e.Load(&d)
	if err != nil {
		f.t.Fatalf("Load: %s", err)
	}
	g := coretest.Start(f.t, configYAML(cfg.Routes[0].Name), core.Options{}, nil)
	log := slog.New(slog.DiscardHandler)
	r := New(g.Gateway, func() (*config.Config, error) { return e.Load(&d) }, log)
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	e.Watch(ctx, r, node, log)
	return g, e
}

// waitRoute waits until the gateway serves the config whose route is name.
func waitRoute(t *testing.T, g *coretest.Gateway, name string) {
	t.Helper()
	got := ""
	for deadline := time.Now().Add(etcdWait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got = g.Snapshot().Config().Routes[0].Name; got == name {
			return
		}
	}
	t.Fatalf("route served got %q; want %q", got, name)
}

func TestEtcdLoadMissingKey(t *testing.T) {
	f := newEtcdFixture(t)
	e, err := NewEtcd(f.loc)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	d := config.BuiltinDefaults()
	_, err = e.Load(&d)
	for _, want := range []string{"key /fastgate/config not found in etcd at " + f.srv.Endpoint(), "etcdctl put /fastgate/config"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Load of a missing key: error got %v; want one with %q", err, want)
		}
	}
}

func TestEtcdLoadInvalid(t *testing.T) {
	f := newEtcdFixture(t)
	rev := f.put(f.loc.Key, `{"routes": [{"name": "r", "match": {"path": "/"}, "upstream": "nope"}], "bogus": 1}`)
	e, err := NewEtcd(f.loc)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	d := config.BuiltinDefaults()
	_, err = e.Load(&d)
	for _, want := range []string{"bogus", "routes[0].upstream", "revision " + strconv.FormatInt(rev, 10)} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Load of an invalid JSON config: error got %v; want one with %q", err, want)
		}
	}
}

func TestEtcdWatchAppliesAndReports(t *testing.T) {
	f := newEtcdFixture(t)
	rev1 := f.put(f.loc.Key, configYAML("v1"))
	g, _ := f.startWatching("n1")
	if st := f.waitStatus("n1", rev1); !st.Applied || st.Node != "n1" || st.Error != "" || st.Time.IsZero() {
		t.Fatalf("startup status got %+v; want applied revision %d", st, rev1)
	}

	rev2 := f.put(f.loc.Key, configYAML("v2"))
	waitRoute(t, g, "v2")
	if st := f.waitStatus("n1", rev2); !st.Applied {
		t.Fatalf("status after a good put got %+v; want applied", st)
	}

	// A bad config is rejected: the old one serves, the status says why.
	_, failedBefore := g.Metrics().Reloads()
	rev3 := f.put(f.loc.Key, configYAML("v3")+"  - {match: {path: /x}, upstream: missing}\n")
	st := f.waitStatus("n1", rev3)
	if st.Applied || !strings.Contains(st.Error, "missing") {
		t.Fatalf("status after a bad put got %+v; want applied=false with the error", st)
	}
	if got := g.Snapshot().Config().Routes[0].Name; got != "v2" {
		t.Fatalf("route after a bad put got %q; want %q (the old config)", got, "v2")
	}
	if _, failed := g.Metrics().Reloads(); failed != failedBefore+1 {
		t.Fatalf("failed reloads got %d; want %d", failed, failedBefore+1)
	}

	// The status keys live under the config key: they do not reload it.
	f.put(StatusKey(f.loc.Key, "other"), `{}`)
	rev4 := f.put(f.loc.Key, configYAML("v4"))
	waitRoute(t, g, "v4")
	f.waitStatus("n1", rev4)
}

func TestEtcdWatchRestart(t *testing.T) {
	f := newEtcdFixture(t)
	rev1 := f.put(f.loc.Key, configYAML("v1"))
	g, _ := f.startWatching("n1")
	f.waitStatus("n1", rev1)

	f.srv.Stop()
	f.srv.Restart() // same data directory
	// Put as soon as etcd is back, most likely before the watch has
	// reconnected: it must be applied all the same.
	rev2 := f.put(f.loc.Key, configYAML("v2"))
	waitRoute(t, g, "v2")
	f.waitStatus("n1", rev2)
}

func TestEtcdWatchCompaction(t *testing.T) {
	f := newEtcdFixture(t)
	f.put(f.loc.Key, configYAML("v1"))
	e, err := NewEtcd(f.loc)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	d := config.BuiltinDefaults()
	if _, err := e.Load(&d); err != nil {
		t.Fatal(err)
	}
	// The key changes many times and etcd compacts while the node is not
	// watching: it fell behind, and resumes from a revision etcd no longer
	// has. It must read the key again and apply the latest value once.
	var last int64
	for i := range 20 {
		last = f.put(f.loc.Key, configYAML("v"+strconv.Itoa(i+2)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), etcdWait)
	defer cancel()
	if _, err := f.cli.Compact(ctx, last, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact: %s", err)
	}
	g := coretest.Start(t, configYAML("v1"), core.Options{}, nil)
	log := slog.New(slog.DiscardHandler)
	r := New(g.Gateway, func() (*config.Config, error) { return e.Load(&d) }, log)
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	e.Watch(wctx, r, "n1", log)
	waitRoute(t, g, "v21")
	if st := f.waitStatus("n1", last); !st.Applied {
		t.Fatalf("status after the resync got %+v; want applied revision %d", st, last)
	}
	if ok, _ := g.Metrics().Reloads(); ok != 1 {
		t.Fatalf("reloads after the resync got %d; want 1 (the latest value, once)", ok)
	}
}
