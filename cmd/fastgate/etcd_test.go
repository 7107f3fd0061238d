package main

// Integration tests of config and discovery from etcd: real etcd, real
// fastgate processes.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"fastgate/core/discovery/etcdtest"
	"fastgate/core/reload"
)

// etcdConfigKey is where the tests keep the gateways' config.
const etcdConfigKey = "/fastgate/config"

// convergeWait bounds the wait for every node to serve a change. It is a
// deadline for a hung test, not the figure measured: that is logged.
const convergeWait = 15 * time.Second

// etcdEnv is a running etcd and a client to it.
type etcdEnv struct {
	srv *etcdtest.Server
	cli *clientv3.Client
}

func startEtcd(t *testing.T) *etcdEnv {
	t.Helper()
	srv := etcdtest.Start(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &etcdEnv{srv: srv, cli: cli}
}

func (e *etcdEnv) url(key string) string { return "etcd://" + e.srv.Endpoint() + key }

func (e *etcdEnv) put(t *testing.T, key, value string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	resp, err := e.cli.Put(ctx, key, value)
	if err != nil {
		t.Fatalf("etcd put %s: %s", key, err)
	}
	return resp.Header.Revision
}

func (e *etcdEnv) del(t *testing.T, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	if _, err := e.cli.Delete(ctx, key); err != nil {
		t.Fatalf("etcd delete %s: %s", key, err)
	}
}

// status reads a node's status under the config key.
func (e *etcdEnv) status(t *testing.T, node string) reload.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	resp, err := e.cli.Get(ctx, reload.StatusKey(etcdConfigKey, node))
	if err != nil {
		t.Fatalf("etcd get status of %s: %s", node, err)
	}
	var st reload.Status
	if len(resp.Kvs) > 0 {
		if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
			t.Fatalf("status of %s: %q: %s", node, resp.Kvs[0].Value, err)
		}
	}
	return st
}

// waitStatus waits until node's status is of revision rev and returns it.
func (e *etcdEnv) waitStatus(t *testing.T, node string, rev int64) reload.Status {
	t.Helper()
	var st reload.Status
	for deadline := time.Now().Add(convergeWait); time.Now().Before(deadline); time.Sleep(pollInterval) {
		if st = e.status(t, node); st.Revision == rev {
			return st
		}
	}
	t.Fatalf("status of node %s got %+v; want revision %d", node, st, rev)
	return st
}

// startEtcdGateway starts fastgate with -config etcd://... on free ports
// (-listen, -admin-listen), named node, and waits until both ports accept.
func startEtcdGateway(t *testing.T, e *etcdEnv, node string) *gateway {
	t.Helper()
	addr, adminAddr := freePort(t), freePort(t)
	p := startProc(t, "fastgate "+node, fastgateBin, io.Discard, "-config", e.url(etcdConfigKey),
		"-listen", addr, "-admin-listen", adminAddr, "-node-name", node, "-log-level", "warn")
	p.stopInCleanup(t)
	g := &gateway{proc: p, addr: addr, adminAddr: adminAddr, client: newClient()}
	t.Cleanup(g.client.CloseIdleConnections)
	waitListening(t, p, addr, adminAddr)
	return g
}

// waitListening waits until p accepts connections on every address.
func waitListening(t *testing.T, p *proc, addrs ...string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp4", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.exited:
				t.Fatalf("%s exited with %d before listening on %s; stderr:\n%s", p.name, p.code, addr, p.stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not listening on %s after %s: %s; stderr:\n%s", p.name, addr, startTimeout, err, p.stderr.String())
			}
			time.Sleep(pollInterval)
		}
	}
}

// whoConfig routes /who to the upstream named to, among a and b.
func whoConfig(to string, a, b *upstream) string {
	return `
upstreams:
  a: {targets: [{url: "` + a.url() + `"}]}
  b: {targets: [{url: "` + b.url() + `"}]}
routes:
  - name: who
    match: {path: "/who"}
    upstream: ` + to + `
`
}

// stubName returns who answered GET /who on g, "" on a failure.
func stubName(g *gateway) string {
	r, err := g.try("GET", "/who", "")
	if err != nil || r.status != 200 {
		return ""
	}
	return r.header.Get("X-Stub-Name")
}

// TestEtcdConfigCluster runs three gateways on one config in etcd: a change
// reaches all three (the time each took is logged), and a bad config is
// refused by each, which keeps serving the old one and says so in its
// status key and its metrics.
func TestEtcdConfigCluster(t *testing.T) {
	e := startEtcd(t)
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	rev1 := e.put(t, etcdConfigKey, whoConfig("a", a, b))
	nodes := []string{"n1", "n2", "n3"}
	gws := make([]*gateway, len(nodes))
	for i, n := range nodes {
		gws[i] = startEtcdGateway(t, e, n)
	}
	for i, g := range gws {
		if got := stubName(g); got != "a" {
			t.Fatalf("%s: /who answered by %q; want a", nodes[i], got)
		}
		if st := e.waitStatus(t, nodes[i], rev1); !st.Applied || st.Node != nodes[i] {
			t.Fatalf("%s: startup status got %+v; want applied", nodes[i], st)
		}
	}

	// A good change: every node serves it; log how long each took.
	start := time.Now()
	rev2 := e.put(t, etcdConfigKey, whoConfig("b", a, b))
	took := make([]time.Duration, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for deadline := start.Add(convergeWait); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if stubName(g) == "b" {
					took[i] = time.Since(start)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, d := range took {
		if d == 0 {
			t.Fatalf("%s: still not serving the new config %s after the put; stderr:\n%s", nodes[i], convergeWait, gws[i].stderr.String())
		}
		t.Logf("%s serves the new config %s after the etcd put", nodes[i], d)
		if st := e.waitStatus(t, nodes[i], rev2); !st.Applied {
			t.Fatalf("%s: status got %+v; want applied", nodes[i], st)
		}
	}

	// A bad config: refused by each node, which keeps the old one.
	rev3 := e.put(t, etcdConfigKey, whoConfig("missing", a, b))
	for i, g := range gws {
		st := e.waitStatus(t, nodes[i], rev3)
		if st.Applied || !strings.Contains(st.Error, `routes[0].upstream`) {
			t.Fatalf("%s: status after a bad config got %+v; want applied=false naming routes[0].upstream", nodes[i], st)
		}
		if got := stubName(g); got != "b" {
			t.Fatalf("%s: /who after a bad config answered by %q; want b (the old config)", nodes[i], got)
		}
		if got := g.metric(t, `fastgate_config_reloads_total{result="error"}`); got != 1 {
			t.Fatalf("%s: fastgate_config_reloads_total{result=\"error\"} got %v; want 1", nodes[i], got)
		}
		if got := g.metric(t, `fastgate_config_reloads_total{result="ok"}`); got != 1 {
			t.Fatalf("%s: fastgate_config_reloads_total{result=\"ok\"} got %v; want 1", nodes[i], got)
		}
	}

	// Fixed: applied again everywhere.
	rev4 := e.put(t, etcdConfigKey, whoConfig("a", a, b))
	for i, g := range gws {
		if st := e.waitStatus(t, nodes[i], rev4); !st.Applied {
			t.Fatalf("%s: status after the fix got %+v; want applied", nodes[i], st)
		}
		if got := stubName(g); got != "a" {
			t.Fatalf("%s: /who after the fix answered by %q; want a", nodes[i], got)
		}
	}
}

// TestEtcdConfigCheck: -check reads the key like a file, and a missing key
// or a malformed URL are clear errors.
func TestEtcdConfigCheck(t *testing.T) {
	e := startEtcd(t)
	code, _, stderr := runFastgate(t, "-check", "-config", e.url(etcdConfigKey))
	if code != 1 || !strings.Contains(stderr, "key /fastgate/config not found in etcd at "+e.srv.Endpoint()) ||
		!strings.Contains(stderr, "etcdctl put /fastgate/config") {
		t.Fatalf("-check of a missing key: exit %d; stderr:\n%s\nwant exit 1 saying the key is not found and how to put one", code, stderr)
	}
	code, _, stderr = runFastgate(t, "-config", e.url(etcdConfigKey))
	if code != 1 || !strings.Contains(stderr, "not found in etcd") {
		t.Fatalf("start with a missing key: exit %d; stderr:\n%s\nwant exit 1 saying the key is not found", code, stderr)
	}

	e.put(t, etcdConfigKey, `{"upstreams": {"u": {"targets": [{"url": "http://127.0.0.1:9"}]}}, "routes": [{"match": {"path": "/"}, "upstream": "u"}]}`)
	code, stdout, stderr := runFastgate(t, "-check", "-config", e.url(etcdConfigKey))
	if code != 0 || !strings.Contains(stdout, "ok: 1 routes, 1 upstreams") {
		t.Fatalf("-check of a good JSON config in etcd: exit %d, stdout %q; stderr:\n%s", code, stdout, stderr)
	}
	e.put(t, etcdConfigKey, "routes:\n  - match: {path: /}\n    upstream: nope\n    bogus: 1\n")
	code, _, stderr = runFastgate(t, "-check", "-config", e.url(etcdConfigKey))
	if code != 1 {
		t.Fatalf("-check of a bad YAML config in etcd: exit %d; want 1; stderr:\n%s", code, stderr)
	}
	wantProblem(t, stderr, "routes[0].bogus", "unknown")
	wantProblem(t, stderr, "routes[0].upstream", "nope")

	code, _, stderr = runFastgate(t, "-check", "-listen", "8080", "-config", e.url(etcdConfigKey))
	if code != 2 || !strings.Contains(stderr, `-listen "8080": want host:port`) {
		t.Fatalf("-listen 8080: exit %d; stderr:\n%s\nwant exit 2 saying what -listen wants", code, stderr)
	}
	for _, bad := range []string{"etcd://127.0.0.1/fastgate/config", "etcd:///fastgate/config", "etcd://127.0.0.1:2379"} {
		code, _, stderr = runFastgate(t, "-check", "-config", bad)
		if code != 2 || !strings.Contains(stderr, "etcd://127.0.0.1:2379/fastgate/config") {
			t.Fatalf("-config %s: exit %d; stderr:\n%s\nwant exit 2 with an example URL", bad, code, stderr)
		}
	}
}

// TestEtcdDiscovery: an upstream whose targets are keys under an etcd
// prefix follows puts and deletes.
func TestEtcdDiscovery(t *testing.T) {
	e := startEtcd(t)
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	const prefix = "/fastgate/upstreams/svc/"
	e.put(t, prefix+"a", `{"url": "`+a.url()+`"}`)
	g := startGateway(t, `
upstreams:
  svc:
    discovery: {type: etcd, endpoints: ["`+e.srv.Endpoint()+`"], prefix: "`+prefix+`"}
routes:
  - name: who
    match: {path: "/who"}
    upstream: svc
`)
	waitStub := func(want string) {
		t.Helper()
		got := ""
		for deadline := time.Now().Add(convergeWait); time.Now().Before(deadline); time.Sleep(pollInterval) {
			if got = stubName(g); got == want {
				return
			}
		}
		t.Fatalf("/who answered by %q; want %q; stderr:\n%s", got, want, g.stderr.String())
	}
	waitStub("a")
	e.put(t, prefix+"b", b.url())
	waitStub("b") // b added: a and b answer in turn
	e.del(t, prefix+"a")
	// a is gone once 20 answers in a row are b's (with a still a target,
	// every other one would be a's); then it stays gone.
	for run, deadline := 0, time.Now().Add(convergeWait); run < 20; run++ {
		if stubName(g) != "b" {
			if time.Now().After(deadline) {
				t.Fatalf("/who still answered by a %v after a was deleted; stderr:\n%s", convergeWait, g.stderr.String())
			}
			run = -1
			time.Sleep(pollInterval)
		}
	}
	for range 20 {
		if got := stubName(g); got != "b" {
			t.Fatalf("/who after a was deleted and gone answered by %q; want b", got)
		}
	}
}

// TestEtcdDiscoveryUnderLoad: targets put and deleted under an etcd prefix
// are added and removed under load without a failed request, and a removed
// target gets no request once GET /upstreams shows it gone.
func TestEtcdDiscoveryUnderLoad(t *testing.T) {
	e := startEtcd(t)
	a, b, c := startUpstream(t, "a"), startUpstream(t, "b"), startUpstream(t, "c")
	const prefix = "/fastgate/upstreams/load/"
	have := map[string]bool{}
	set := func(ups ...*upstream) {
		want := map[string]bool{}
		for _, u := range ups {
			want[u.stubName] = true
			if !have[u.stubName] {
				e.put(t, prefix+u.stubName, u.url())
			}
		}
		for name := range have {
			if !want[name] {
				e.del(t, prefix+name)
			}
		}
		have = want
	}
	set(a, b)
	g := startGateway(t, `
upstreams:
  svc:
    discovery: {type: etcd, endpoints: ["`+e.srv.Endpoint()+`"], prefix: "`+prefix+`"}
routes:
  - match: {path: "/{rest:*}"}
    upstream: svc
`)
	checkDiscoveryUnderLoad(t, g, set, a, b, c)
	if n := g.metric(t, `fastgate_discovery_targets{upstream="svc"}`); n != 2 {
		t.Fatalf(`fastgate_discovery_targets{upstream="svc"} got %v; want 2`, n)
	}
}
