package ipfilter

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
	"fastgate/core/coretest"
)

func table(t testing.TB, entries ...string) *Table {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range entries {
		p, err := config.ParseIPRule(s)
		if err != nil {
			t.Fatalf("ParseIPRule(%q): %s", s, err)
		}
		ps = append(ps, p)
	}
	return NewTable(config.IPRanges(ps))
}

func TestTableContains(t *testing.T) {
	f := func(entries []string, ip string, want bool) {
		t.Helper()
		if got := table(t, entries...).Contains(netip.MustParseAddr(ip)); got != want {
			t.Fatalf("%v contains %s: got %v; want %v", entries, ip, got, want)
		}
	}
	nets := []string{"10.0.0.0/8", "192.168.1.1", "172.16.0.0/12", "2001:db8::/32", "fe80::1"}
	f(nets, "10.0.0.0", true)
	f(nets, "10.255.255.255", true)
	f(nets, "11.0.0.0", false)
	f(nets, "9.255.255.255", false)
	f(nets, "192.168.1.1", true)
	f(nets, "192.168.1.2", false)
	f(nets, "192.168.1.0", false)
	f(nets, "172.31.255.255", true)
	f(nets, "172.32.0.0", false)
	f(nets, "::ffff:10.1.2.3", true) // IPv4-mapped matches IPv4 rules
	f(nets, "::ffff:11.1.2.3", false)
	f(nets, "2001:db8::1", true)
	f(nets, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true)
	f(nets, "2001:db9::", false)
	f(nets, "fe80::1", true)
	f(nets, "fe80::2", false)
	f(nets, "::1", false)
	// an IPv6 rule over the mapped block covers IPv4 clients
	f([]string{"::/0"}, "1.2.3.4", true)
	f([]string{"::/0"}, "2001:db8::1", true)
	f([]string{"::ffff:0:0/96"}, "8.8.8.8", true)
	f([]string{"::ffff:0:0/96"}, "2001:db8::1", false)
	f([]string{"0.0.0.0/0"}, "::ffff:1.2.3.4", true)
	f([]string{"0.0.0.0/0"}, "::1", false)
	// touching and overlapping prefixes merge
	f([]string{"10.0.0.0/25", "10.0.0.128/25", "10.0.0.5"}, "10.0.0.200", true)
	f(nil, "10.0.0.1", false)
	if n := table(t, "10.0.0.0/25", "10.0.0.128/25", "10.0.0.5").Len(); n != 1 {
		t.Fatalf("merged ranges got %d; want 1", n)
	}
	if table(t, "10.0.0.0/8").Contains(netip.Addr{}) {
		t.Fatalf("the invalid address is in a table; want none")
	}
}

// TestTableMatchesPrefixes checks the table against netip.Prefix.Contains
// for random prefixes and addresses, IPv4 and IPv6.
func TestTableMatchesPrefixes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	addr := func() netip.Addr {
		if r.IntN(2) == 0 {
			// a narrow space so prefixes and probes meet
			return netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
		}
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.IntN(256)), 14: byte(r.IntN(4))})
	}
	for round := 0; round < 200; round++ {
		var ps []netip.Prefix
		for range r.IntN(40) {
			a := addr()
			bits := a.BitLen() - r.IntN(18)
			p, _ := a.Prefix(bits)
			ps = append(ps, p)
		}
		tb := NewTable(config.IPRanges(ps))
		for range 200 {
			a := addr()
			want := false
			for _, p := range ps {
				want = want || p.Contains(a)
			}
			if got := tb.Contains(a); got != want {
				t.Fatalf("round %d: %v contains %s: got %v; want %v", round, ps, a, got, want)
			}
		}
	}
}

func TestFilter(t *testing.T) {
	h := newHarness(t, `
ip: {deny: ["203.0.113.0/24"]}
routes:
  - name: admin
    match: {path: /admin}
    upstream: users
    ip: {allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.6.6.6"]}
  - name: public
    match: {path: "/{p:*}"}
    upstream: users
`)
	f := func(peer, path string, want int) {
		t.Helper()
		if got := h.g.StatusFrom(peer, path); got != want {
			t.Fatalf("GET %s from %s: status got %d; want %d", path, peer, got, want)
		}
	}
	f("10.1.2.3", "/admin", 200)
	f("2001:db8::7", "/admin", 200)
	f("10.6.6.6", "/admin", 403)     // route deny wins over route allow
	f("192.0.2.1", "/admin", 403)    // not in the route's allow
	f("203.0.113.9", "/admin", 403)  // top-level deny
	f("203.0.113.9", "/public", 403) // top-level deny on every route
	f("192.0.2.1", "/public", 200)
	f("10.6.6.6", "/public", 200)

	resp := h.g.GetFrom("192.0.2.1", "/admin")
	defer fasthttp.ReleaseResponse(resp)
	var body struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(resp.Body(), &body); err != nil || body.Status != 403 || !strings.Contains(body.Error, "client IP") {
		t.Fatalf("403 body got %q (%v); want the gateway's JSON error", resp.Body(), err)
	}
	set := h.g.Metrics().Set()
	if got := set.GetOrCreateCounter(`fastgate_ip_denied_total{route="admin"}`).Get(); got != 4 {
		t.Fatalf(`fastgate_ip_denied_total{route="admin"} got %d; want 4`, got)
	}
	if got := set.GetOrCreateCounter(`fastgate_ip_denied_total{route="public"}`).Get(); got != 1 {
		t.Fatalf(`fastgate_ip_denied_total{route="public"} got %d; want 1`, got)
	}
}

// TestFilterTrustedProxies checks that the rules see the client IP past
// trusted proxies: the rightmost untrusted X-Forwarded-For entry from a
// trusted peer, and the peer itself when it is not trusted.
func TestFilterTrustedProxies(t *testing.T) {
	h := newHarness(t, `
server: {trusted_proxies: ["10.9.0.0/16"]}
routes:
  - {upstream: users, ip: {allow: ["192.0.2.0/24"]}}
`)
	f := func(peer, xff string, want int) {
		t.Helper()
		var hs []string
		if xff != "" {
			hs = append(hs, "X-Forwarded-For: "+xff)
		}
		if got := h.g.StatusFrom(peer, "/x", hs...); got != want {
			t.Fatalf("peer %s, X-Forwarded-For %q: status got %d; want %d", peer, xff, got, want)
		}
	}
	f("10.9.0.1", "192.0.2.5", 200)
	f("10.9.0.1", "192.0.2.5, 10.9.0.7", 200) // trusted hops skipped
	f("10.9.0.1", "192.0.2.5, 198.51.100.1", 403)
	f("10.9.0.1", "", 403)              // the proxy itself is the client
	f("198.51.100.1", "192.0.2.5", 403) // an untrusted peer's header is ignored
	f("192.0.2.7", "198.51.100.1", 200) // likewise
	f("::ffff:192.0.2.8", "", 200)      // IPv4-mapped peer
}

func TestKey(t *testing.T) {
	none := coretest.Config(t, upstreamBase+"routes: [{upstream: users}]")
	if k := (Builder{}).Key(none, none.Routes[0]); k != nil {
		t.Fatalf("Key without rules got %#v; want nil", k)
	}
	c := coretest.Config(t, upstreamBase+"ip: {deny: [10.0.0.1]}\nroutes: [{upstream: users}]")
	if k := (Builder{}).Key(c, c.Routes[0]); k == nil {
		t.Fatalf("Key with top-level rules got nil; want them")
	}
}
