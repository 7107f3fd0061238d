package config

import (
	"net/netip"
	"strings"
	"testing"
)

// checkErrors parses validBase+data and wants exactly the error lines
// want (none: valid).
func checkErrors(t *testing.T, data string, want ...string) {
	t.Helper()
	_, err := ParseChecked([]byte(validBase+data), "yaml", nil, nil)
	got := ""
	if err != nil {
		got = err.Error()
	}
	if got != strings.Join(want, "\n") {
		t.Fatalf("ParseChecked(%s):\ngot:\n%s\nwant:\n%s", data, got, strings.Join(want, "\n"))
	}
}

func TestIPRulesErrors(t *testing.T) {
	f := checkErrors
	f(t, "ip: {allow: [10.0.0.0/8, 192.168.1.1, \"2001:db8::/32\"], deny: [10.6.0.0/16]}\nroutes: [{upstream: users, ip: {allow: [10.1.0.0/16]}}]")
	f(t, "ip: {deny: [10.0.0.1, 10.0.0.2, 10.0.0.0/33]}\nroutes: [{upstream: users}]",
		`ip.deny[2]: "10.0.0.0/33" is not an IP or CIDR; write one such as "10.0.0.1", "10.0.0.0/8" or "2001:db8::/32"`)
	f(t, "routes: [{upstream: users, ip: {allow: [10.0.0.1/8, nope]}}]",
		`routes[0].ip.allow[0]: "10.0.0.1/8" has host bits set: its network is "10.0.0.0/8"; write "10.0.0.0/8" for the network, or "10.0.0.1" for the one address`,
		`routes[0].ip.allow[1]: "nope" is not an IP or CIDR; write one such as "10.0.0.1", "10.0.0.0/8" or "2001:db8::/32"`)
	f(t, "routes: [{upstream: users, ip: {deny: [\"fe80::1%eth0\"]}}]",
		`routes[0].ip.deny[0]: "fe80::1%eth0" has a zone (%eth0); write the address without it`)
	f(t, "ip: {allow: [10.1.0.0/16], deny: [10.0.0.0/8]}\nroutes: [{upstream: users}]",
		"ip.allow: every address it lists is also in ip.deny, and deny wins: no client would be admitted on any route; remove the deny entries that cover it, or remove allow")
	// route allow covered by the route's and the top-level deny together
	f(t, "ip: {deny: [10.0.0.0/9]}\nroutes: [{upstream: users, ip: {allow: [10.0.0.0/8], deny: [10.128.0.0/9]}}]",
		"routes[0].ip.allow: every address it admits is denied by this route's ip.deny or the top-level ip.deny, and deny wins: no client would be admitted; remove the deny entries that cover it, or remove allow")
	f(t, "ip: {allow: [10.0.0.0/8]}\nroutes: [{upstream: users, ip: {allow: [192.168.0.0/16]}}]",
		"routes[0].ip.allow: no address it lists is in the top-level ip.allow, and a client must pass both: no client would be admitted; widen ip.allow or fix this list")
	// partly covered is fine
	f(t, "routes: [{upstream: users, ip: {allow: [10.0.0.0/8], deny: [10.0.0.0/9]}}]")
}

func TestIPRanges(t *testing.T) {
	f := func(entries []string, want string) {
		t.Helper()
		var ps []netip.Prefix
		for _, s := range entries {
			p, err := ParseIPRule(s)
			if err != nil {
				t.Fatalf("ParseIPRule(%q): %s", s, err)
			}
			ps = append(ps, p)
		}
		var got []string
		for _, r := range IPRanges(ps) {
			got = append(got, r.First.Unmap().String()+"-"+r.Last.Unmap().String())
		}
		if strings.Join(got, " ") != want {
			t.Fatalf("IPRanges(%v) got %q; want %q", entries, strings.Join(got, " "), want)
		}
	}
	f(nil, "")
	f([]string{"10.0.0.0/24"}, "10.0.0.0-10.0.0.255")
	f([]string{"10.0.1.0/24", "10.0.0.0/24", "10.0.0.7"}, "10.0.0.0-10.0.1.255")
	f([]string{"10.0.0.0/24", "10.0.2.0/24"}, "10.0.0.0-10.0.0.255 10.0.2.0-10.0.2.255")
	f([]string{"2001:db8::/127", "10.0.0.1"}, "10.0.0.1-10.0.0.1 2001:db8::-2001:db8::1")
}
