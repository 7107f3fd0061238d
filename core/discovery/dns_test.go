package discovery

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"fastgate/core/config"
)

// dnsServer is a DNS server on loopback (UDP and TCP on one port) whose
// answers the test sets. It sends every question it answers on queries.
type dnsServer struct {
	addr    string
	queries chan dnsQuery

	mu sync.Mutex
	// zone holds the records by owner name; a name without any is
	// NXDOMAIN.
	zone map[string][]dns.RR
	// extra is the additional section of SRV answers.
	extra []dns.RR
	// rcode, when not 0, is the answer to everything.
	rcode int
	// truncate answers over UDP with TC set and no records.
	truncate bool
}

type dnsQuery struct {
	name string
	typ  string // "A", "SRV"...
	net  string // "udp" or "tcp"
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	s := &dnsServer{zone: map[string][]dns.RR{}, queries: make(chan dnsQuery, 1000)}
	var pc net.PacketConn
	var ln net.Listener
	// TCP on the port UDP got; another process may hold it: retry a few.
	for i := 0; ; i++ {
		var err error
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp4", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if i == 10 {
			t.Fatalf("no port free for both UDP and TCP: %s", err)
		}
	}
	s.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: s}, {Listener: ln, Handler: s}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe() //nolint:errcheck // ends at Shutdown
		<-started
		t.Cleanup(func() { srv.Shutdown() }) //nolint:errcheck
	}
	return s
}

func (s *dnsServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	q := req.Question[0]
	network := w.LocalAddr().Network()
	s.queries <- dnsQuery{name: q.Name, typ: dns.TypeToString[q.Qtype], net: network}
	m := new(dns.Msg)
	m.SetReply(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.rcode != 0:
		m.Rcode = s.rcode
	case s.truncate && network == "udp":
		m.Truncated = true
	case s.zone[q.Name] == nil:
		m.Rcode = dns.RcodeNameError
	default:
		for _, rr := range s.zone[q.Name] {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		if q.Qtype == dns.TypeSRV {
			m.Extra = append(m.Extra, s.extra...)
		}
	}
	w.WriteMsg(m) //nolint:errcheck
}

// set replaces the zone with records in zone-file syntax.
func (s *dnsServer) set(t *testing.T, records ...string) {
	t.Helper()
	zone := map[string][]dns.RR{}
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("record %q: %s", r, err)
		}
		zone[rr.Header().Name] = append(zone[rr.Header().Name], rr)
	}
	s.mu.Lock()
	s.zone = zone
	s.mu.Unlock()
}

func (s *dnsServer) setExtra(t *testing.T, records ...string) {
	t.Helper()
	var extra []dns.RR
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("record %q: %s", r, err)
		}
		extra = append(extra, rr)
	}
	s.mu.Lock()
	s.extra = extra
	s.mu.Unlock()
}

func (s *dnsServer) setRcode(rcode int, truncate bool) {
	s.mu.Lock()
	s.rcode, s.truncate = rcode, truncate
	s.mu.Unlock()
}

// drainQueries returns the questions answered so far, "TYPE name/net".
func (s *dnsServer) drainQueries() []string {
	var out []string
	for {
		select {
		case q := <-s.queries:
			out = append(out, q.typ+" "+q.name+"/"+q.net)
		default:
			return out
		}
	}
}

// dnsRun is a dnsSource running on a virtual clock: each wait it asks for
// is sent on waits and lasts until the test calls tick.
type dnsRun struct {
	t      *testing.T
	events chan dnsEvent
	waits  chan time.Duration
	ticks  chan struct{}
}

// dnsEvent is an emit (err nil) or a report.
type dnsEvent struct {
	targets []config.Target
	err     error
	report  bool
}

func runDNS(t *testing.T, d *config.Discovery) *dnsRun {
	t.Helper()
	d.Type = config.DiscoveryDNS
	setDiscoveryDefaults(d)
	src := newDNSSource(d)
	r := &dnsRun{t: t, events: make(chan dnsEvent, 100), waits: make(chan time.Duration, 1), ticks: make(chan struct{})}
	src.sleep = func(ctx context.Context, d time.Duration) bool {
		r.waits <- d
		select {
		case <-ctx.Done():
			return false
		case <-r.ticks:
			return true
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Run(ctx,
			func(ts []config.Target) { r.events <- dnsEvent{targets: ts} },
			func(err error) { r.events <- dnsEvent{err: err, report: true} })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// setDiscoveryDefaults fills d as config.SetDefaults would.
func setDiscoveryDefaults(d *config.Discovery) {
	c := &config.Config{Upstreams: map[string]*config.Upstream{"u": {Discovery: d, Targets: mkTargets("http://127.0.0.1:1")}}}
	c.SetDefaults(nil)
}

func (r *dnsRun) next() dnsEvent {
	r.t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(testWait):
		r.t.Fatal("no answer from the DNS source")
	}
	return dnsEvent{}
}

// wantSet waits for the next event, which must be the set of urls
// ("url*weight"), in any order.
func (r *dnsRun) wantSet(urls ...string) {
	r.t.Helper()
	ev := r.next()
	if ev.report {
		r.t.Fatalf("got report %v; want the set %v", ev.err, urls)
	}
	got := normalize(ev.targets)
	want := normalize(mkTargets(urls...))
	if !slices.Equal(got, want) {
		r.t.Fatalf("set got %v; want %v", got, want)
	}
}

// wantReport waits for the next event, which must report an error
// containing want, or recovery (nil) when want is "".
func (r *dnsRun) wantReport(want string) {
	r.t.Helper()
	ev := r.next()
	switch {
	case !ev.report:
		r.t.Fatalf("got the set %v; want a report %q", ev.targets, want)
	case want == "" && ev.err != nil:
		r.t.Fatalf("report got %v; want nil (recovered)", ev.err)
	case want != "" && (ev.err == nil || !strings.Contains(ev.err.Error(), want)):
		r.t.Fatalf("report got %v; want an error containing %q", ev.err, want)
	}
}

// tick ends the source's current sleep.
func (r *dnsRun) tick() { r.ticks <- struct{}{} }

// wantWait waits for the source to sleep, which must be for d; tick ends
// the sleep.
func (r *dnsRun) wantWait(d time.Duration) {
	r.t.Helper()
	select {
	case got := <-r.waits:
		if got != d {
			r.t.Fatalf("wait got %s; want %s", got, d)
		}
	case <-time.After(testWait):
		r.t.Fatal("the DNS source did not wait")
	}
}

func TestDNSSRV(t *testing.T) {
	s := startDNS(t)
	s.set(t,
		"_users._tcp.svc. 30 IN SRV 10 5 8001 a.svc.",
		"_users._tcp.svc. 30 IN SRV 10 0 8002 b.svc.",
		"_users._tcp.svc. 30 IN SRV 20 9 8003 c.svc.", // a lower tier: unused while 10 has records
		"a.svc. 30 IN A 127.0.0.10",
		"b.svc. 5 IN A 127.0.0.2",
		"b.svc. 30 IN AAAA ::1",
		"c.svc. 30 IN A 127.0.0.3",
	)
	// a's address comes in the additional section: not asked for.
	s.setExtra(t, "a.svc. 30 IN A 127.0.0.1")
	r := runDNS(t, &config.Discovery{Name: "_users._tcp.svc", Resolvers: []string{s.addr}, MinTTL: config.Duration(time.Second)})
	r.wantSet("http://127.0.0.1:8001*5", "http://127.0.0.2:8002*1", "http://[::1]:8002*1")
	if got, want := s.drainQueries(), []string{"SRV _users._tcp.svc./udp", "A b.svc./udp", "AAAA b.svc./udp"}; !slices.Equal(got, want) {
		t.Fatalf("queries got %q; want %q", got, want)
	}
	r.wantWait(5 * time.Second) // b's A record has the smallest TTL
	// The first tier empties: the next one serves.
	s.set(t, "_users._tcp.svc. 60 IN SRV 20 9 8003 c.svc.", "c.svc. 60 IN A 127.0.0.3")
	s.setExtra(t)
	r.tick()
	r.wantSet("http://127.0.0.3:8003*9")
	r.wantWait(30 * time.Second) // TTL 60 capped at interval
}

func TestDNSAddressRecords(t *testing.T) {
	s := startDNS(t)
	s.set(t, "users.svc. 0 IN A 127.0.0.1", "users.svc. 0 IN A 127.0.0.2", "users.svc. 0 IN AAAA ::1")
	f := func(record string, want ...string) {
		t.Helper()
		r := runDNS(t, &config.Discovery{Name: "users.svc", Record: record, Port: 9000, Resolvers: []string{s.addr}, MinTTL: config.Duration(2 * time.Second)})
		r.wantSet(want...)
		r.wantWait(2 * time.Second) // TTL 0 raised to min_ttl
	}
	f(config.RecordIP, "http://127.0.0.1:9000", "http://127.0.0.2:9000", "http://[::1]:9000")
	f(config.RecordA, "http://127.0.0.1:9000", "http://127.0.0.2:9000")
	f(config.RecordAAAA, "http://[::1]:9000")
}

func TestDNSTruncatedRetriesOverTCP(t *testing.T) {
	s := startDNS(t)
	s.set(t, "users.svc. 10 IN A 127.0.0.1")
	s.setRcode(0, true)
	r := runDNS(t, &config.Discovery{Name: "users.svc", Record: config.RecordA, Port: 80, Resolvers: []string{s.addr}})
	r.wantSet("http://127.0.0.1:80")
	if got, want := s.drainQueries(), []string{"A users.svc./udp", "A users.svc./tcp"}; !slices.Equal(got, want) {
		t.Fatalf("queries got %q; want %q", got, want)
	}
}

func TestDNSFailureBacksOff(t *testing.T) {
	s := startDNS(t)
	s.set(t, "users.svc. 10 IN A 127.0.0.1")
	r := runDNS(t, &config.Discovery{Name: "users.svc", Port: 80, Resolvers: []string{s.addr},
		MinTTL: config.Duration(time.Second), Interval: config.Duration(5 * time.Second)})
	r.wantSet("http://127.0.0.1:80")
	r.wantWait(5 * time.Second)
	s.setRcode(dns.RcodeServerFailure, false)
	r.tick()
	// Backoff from min_ttl, doubling, capped at interval; no set emitted
	// (the manager keeps the last one).
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second} {
		r.wantReport("SERVFAIL")
		r.wantWait(d)
		if i == 3 {
			s.setRcode(0, false)
		}
		r.tick()
	}
	r.wantReport("")
	r.wantSet("http://127.0.0.1:80")
	r.wantWait(5 * time.Second)
}

func TestDNSEmpty(t *testing.T) {
	s := startDNS(t)
	r := runDNS(t, &config.Discovery{Name: "users.svc", Port: 80, Resolvers: []string{s.addr}, MinTTL: config.Duration(3 * time.Second)})
	// NXDOMAIN: an empty set (allow_empty decides in the manager),
	// resolved again after min_ttl.
	r.wantSet()
	r.wantWait(3 * time.Second)
	// A name with records of another type only: empty too.
	s.set(t, "users.svc. 10 IN TXT \"x\"")
	r.tick()
	r.wantSet()
}

func TestDNSResolversInTurn(t *testing.T) {
	s := startDNS(t)
	s.set(t, "users.svc. 10 IN A 127.0.0.1")
	// A loopback UDP port nobody listens on: refused at once.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	r := runDNS(t, &config.Discovery{Name: "users.svc", Port: 80, Resolvers: []string{dead, s.addr}, Timeout: config.Duration(time.Second)})
	r.wantSet("http://127.0.0.1:80")
	// Every resolver failing: one error naming each.
	s.setRcode(dns.RcodeRefused, false)
	r.wantWait(10 * time.Second)
	r.tick()
	r.wantReport("discovery: dns A users.svc: no resolver answered: " + dead + ": ")
}

func TestDNSNoResolvConf(t *testing.T) {
	d := &config.Discovery{Type: config.DiscoveryDNS, Name: "users.svc", Port: 80}
	setDiscoveryDefaults(d)
	src := newDNSSource(d)
	src.resolvConf = "/nonexistent/resolv.conf"
	_, _, err := src.resolve(context.Background())
	want := `discovery: dns users.svc: no resolvers: open /nonexistent/resolv.conf: no such file or directory; set discovery.resolvers, such as ["127.0.0.1:53"]`
	if err == nil || err.Error() != want {
		t.Fatalf("resolve without resolv.conf got %v; want %s", err, want)
	}
}
