package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// srvServer is a loopback DNS server (UDP) answering the SRV name
// _svc._tcp.fastgate.test. with the stub upstreams the test sets, their
// addresses in the additional section.
type srvServer struct {
	addr string
	mu   sync.Mutex
	ups  []*upstream
}

const srvName = "_svc._tcp.fastgate.test."

func startSRVServer(t *testing.T) *srvServer {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &srvServer{addr: pc.LocalAddr().String()}
	srv := &dns.Server{PacketConn: pc, Handler: s}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe() //nolint:errcheck // ends at Shutdown
	<-started
	t.Cleanup(func() { srv.Shutdown() }) //nolint:errcheck
	return s
}

func (s *srvServer) set(ups ...*upstream) {
	s.mu.Lock()
	s.ups = ups
	s.mu.Unlock()
}

func (s *srvServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	s.mu.Lock()
	if q.Name == srvName && q.Qtype == dns.TypeSRV {
		for _, u := range s.ups {
			host, port, _ := net.SplitHostPort(u.addr)
			p, _ := strconv.Atoi(port)
			target := u.stubName + ".fastgate.test."
			m.Answer = append(m.Answer, &dns.SRV{Hdr: dns.RR_Header{Name: srvName, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 1},
				Priority: 10, Weight: 1, Port: uint16(p), Target: target})
			m.Extra = append(m.Extra, &dns.A{Hdr: dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
				A: net.ParseIP(host)})
		}
	}
	s.mu.Unlock()
	w.WriteMsg(m) //nolint:errcheck
}

// upstreamTargets returns the target addresses of upstream name in g's
// GET /upstreams, sorted.
func (g *gateway) upstreamTargets(t *testing.T, name string) []string {
	t.Helper()
	r := g.admin(t, "GET", "/upstreams", "")
	var ups []struct {
		Name    string `json:"name"`
		Targets []struct {
			Addr string `json:"addr"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(r.body, &ups); err != nil {
		t.Fatalf("GET /upstreams: %s; body %s", err, r.body)
	}
	var addrs []string
	for _, u := range ups {
		if u.Name == name {
			for _, tg := range u.Targets {
				addrs = append(addrs, tg.Addr)
			}
		}
	}
	slices.Sort(addrs)
	return addrs
}

// waitTargets polls GET /upstreams until upstream svc has exactly ups.
func waitTargets(t *testing.T, g *gateway, ups ...*upstream) {
	t.Helper()
	var want []string
	for _, u := range ups {
		want = append(want, u.addr)
	}
	slices.Sort(want)
	var got []string
	waitFor(t, "targets of svc "+strings.Join(want, ","), 15*time.Second, func() bool {
		got = g.upstreamTargets(t, "svc")
		return slices.Equal(got, want)
	})
}

// discoveryLoad sends GETs from a few goroutines until stop, counting the
// answers by stub; after removed is set, an answer from the stub named
// gone is counted in late.
type discoveryLoad struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	byStub  map[string]int
	sent    atomic.Int64
	after   atomic.Int64 // requests sent once removed was set
	failed  atomic.Int64
	late    atomic.Int64
	removed atomic.Bool
	gone    string
	first   atomic.Value
}

const (
	loadWorkers   = 4
	loadPerWorker = 20000 // bound: a worker stops after as many requests
)

func startDiscoveryLoad(g *gateway, gone string) *discoveryLoad {
	l := &discoveryLoad{stop: make(chan struct{}), byStub: map[string]int{}, gone: gone}
	for w := 0; w < loadWorkers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < loadPerWorker; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				removed := l.removed.Load()
				r, err := g.try("GET", "/x", "")
				l.sent.Add(1)
				if removed {
					l.after.Add(1)
				}
				if err == nil && r.status != 200 {
					err = &statusError{r.status, string(r.body)}
				}
				if err != nil {
					l.failed.Add(1)
					l.first.CompareAndSwap(nil, err.Error())
					continue
				}
				name := r.header.Get("X-Stub-Name")
				if removed && name == l.gone {
					l.late.Add(1)
				}
				l.mu.Lock()
				l.byStub[name]++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return "status " + strconv.Itoa(e.status) + ": " + e.body }

func (l *discoveryLoad) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byStub[name]
}

// checkDiscoveryUnderLoad runs the phases: a and b serve; c is added and
// receives requests; a is removed and receives none after GET /upstreams
// shows it gone. No request may fail. set changes what discovery finds.
func checkDiscoveryUnderLoad(t *testing.T, g *gateway, set func(ups ...*upstream), a, b, c *upstream) {
	t.Helper()
	waitTargets(t, g, a, b)
	l := startDiscoveryLoad(g, a.stubName)
	defer func() { close(l.stop); l.wg.Wait() }()
	waitFor(t, "requests on a and b", 15*time.Second, func() bool { return l.count("a") > 0 && l.count("b") > 0 })

	set(a, b, c)
	waitTargets(t, g, a, b, c)
	waitFor(t, "requests on the added target c", 15*time.Second, func() bool { return l.count("c") > 0 })

	set(b, c)
	waitTargets(t, g, b, c)
	l.removed.Store(true)
	waitFor(t, "200 requests after a was removed", 15*time.Second, func() bool { return l.after.Load() >= 200 })
	close(l.stop)
	l.wg.Wait()
	l.stop = make(chan struct{})

	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed while the targets changed; first: %v", n, l.sent.Load(), l.first.Load())
	}
	if n := l.late.Load(); n != 0 {
		t.Fatalf("the removed target a answered %d requests sent after GET /upstreams showed it gone; want 0", n)
	}
	t.Logf("%d requests, 0 failed; a %d, b %d, c %d", l.sent.Load(), l.count("a"), l.count("b"), l.count("c"))
}

func TestDiscoveryDNSUnderLoad(t *testing.T) {
	a, b, c := startUpstream(t, "a"), startUpstream(t, "b"), startUpstream(t, "c")
	dnsSrv := startSRVServer(t)
	dnsSrv.set(a, b)
	dnsConfig := `
upstreams:
  svc:
    discovery: {type: dns, name: ` + srvName + `, resolvers: ["` + dnsSrv.addr + `"], min_ttl: 1s, interval: 2s, timeout: 1s}
routes:
  - match: {path: "/{rest:*}"}
    upstream: svc
`
	g := startGateway(t, dnsConfig)
	// The gateway waited for the first answer before listening.
	if got, want := g.upstreamTargets(t, "svc"), sortedAddrs(a, b); !slices.Equal(got, want) {
		t.Fatalf("targets right after the start got %v; want %v", got, want)
	}
	checkDiscoveryUnderLoad(t, g, dnsSrv.set, a, b, c)
	if n := g.metric(t, `fastgate_discovery_updates_total{upstream="svc",type="dns"}`); n != 3 {
		t.Fatalf(`fastgate_discovery_updates_total{upstream="svc",type="dns"} got %v; want 3`, n)
	}
	if n := g.metric(t, `fastgate_discovery_targets{upstream="svc"}`); n != 2 {
		t.Fatalf(`fastgate_discovery_targets{upstream="svc"} got %v; want 2`, n)
	}
	// An empty answer: the last set keeps serving (no allow_empty), the
	// error counts.
	dnsSrv.set()
	waitFor(t, "an empty answer counted as an error", 15*time.Second, func() bool {
		return g.metric(t, `fastgate_discovery_errors_total{upstream="svc",type="dns"}`) >= 1
	})
	waitTargets(t, g, b, c)
	if r := g.get(t, "/still"); r.status != 200 {
		t.Fatalf("after the empty answer: status got %d; want 200 from the last set; body %s", r.status, r.body)
	}
	// A reload that changes the discovery block replaces the source
	// (core.Options.OnApply syncs the manager): here a file source, whose
	// first answer applies, and the dns series go.
	path := filepath.Join(t.TempDir(), "targets.json")
	if err := os.WriteFile(path, []byte(`[{"url": "`+a.url()+`"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	g.rewrite(t, strings.Replace(dnsConfig, "{type: dns, name: "+srvName+", resolvers: [\""+dnsSrv.addr+"\"], min_ttl: 1s, interval: 2s, timeout: 1s}",
		"{type: file, path: \""+path+"\"}", 1))
	if r := g.admin(t, "POST", "/reload", ""); r.status != 200 {
		t.Fatalf("POST /reload: status %d: %s", r.status, r.body)
	}
	waitTargets(t, g, a)
	if n := g.metric(t, `fastgate_discovery_updates_total{upstream="svc",type="dns"}`); n != -1 {
		t.Fatalf(`fastgate_discovery_updates_total{upstream="svc",type="dns"} after the switch to file got %v; want the series gone`, n)
	}
	if n := g.metric(t, `fastgate_discovery_updates_total{upstream="svc",type="file"}`); n != 1 {
		t.Fatalf(`fastgate_discovery_updates_total{upstream="svc",type="file"} got %v; want 1`, n)
	}
}

func TestDiscoveryFileUnderLoad(t *testing.T) {
	a, b, c := startUpstream(t, "a"), startUpstream(t, "b"), startUpstream(t, "c")
	path := filepath.Join(t.TempDir(), "targets.yaml")
	set := func(ups ...*upstream) {
		var sb strings.Builder
		sb.WriteString("targets:\n")
		for _, u := range ups {
			sb.WriteString("  - url: " + u.url() + "\n")
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Error(err)
		}
	}
	set(a, b)
	g := startGateway(t, `
upstreams:
  svc:
    discovery: {type: file, path: "`+path+`"}
routes:
  - match: {path: "/{rest:*}"}
    upstream: svc
`)
	checkDiscoveryUnderLoad(t, g, set, a, b, c)
	// A file that does not parse: the last set stays, the error counts.
	if err := os.WriteFile(path, []byte("- {url: "+a.url()+", wieght: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bad file counted as an error", 15*time.Second, func() bool {
		return g.metric(t, `fastgate_discovery_errors_total{upstream="svc",type="file"}`) >= 1
	})
	waitTargets(t, g, b, c)
}

func sortedAddrs(ups ...*upstream) []string {
	var out []string
	for _, u := range ups {
		out = append(out, u.addr)
	}
	slices.Sort(out)
	return out
}

func TestDiscoveryCheckReportsPaths(t *testing.T) {
	stderr := checkRejects(t, `
listen: "127.0.0.1:0"
upstreams:
  users: {discovery: {type: dns, name: _users._tcp.svc, port: 80, resolvers: ["127.0.0.1"]}}
  orders: {discovery: {type: file}}
  items: {discovery: {type: consul}}
routes:
  - {match: {path: /u}, upstream: users}
  - {match: {path: /o}, upstream: orders}
  - {match: {path: /i}, upstream: items}
`)
	f := func(path, what string) { t.Helper(); wantProblem(t, stderr, path, what) }
	f("upstreams.users.discovery.port", "SRV records carry their ports")
	f("upstreams.users.discovery.resolvers[0]", `want "host:port"`)
	f("upstreams.orders.discovery.path", "is required")
	f("upstreams.items.discovery.type", `"consul": want dns, etcd or file`)
}
