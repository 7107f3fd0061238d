package config

import (
	"strings"
	"testing"
	"time"
)

// checkDiscovery parses a config whose upstream svc has the discovery
// block d (YAML flow mapping) and extra upstream fields, and checks the
// problems.
func checkDiscovery(t *testing.T, d, extra string, want ...string) {
	t.Helper()
	data := "routes: [{upstream: svc}]\nupstreams:\n  svc: {discovery: " + d + extra + "}\n"
	_, err := ParseChecked([]byte(data), "yaml", nil, nil)
	got := ""
	if err != nil {
		got = err.Error()
	}
	if got != strings.Join(want, "\n") {
		t.Fatalf("ParseChecked(%s):\ngot:\n%s\nwant:\n%s", data, got, strings.Join(want, "\n"))
	}
}

func TestDiscoveryErrors(t *testing.T) {
	f := checkDiscovery
	// valid
	f(t, `{type: dns, name: _users._tcp.svc.local}`, "")
	f(t, `{type: dns, name: users.svc.local, port: 8080, resolvers: ["127.0.0.1:53", "[::1]:53"], interval: 10s, min_ttl: 2s, scheme: https, timeout: 1s, allow_empty: true}`, "")
	f(t, `{type: dns, name: users.svc.local, record: a, port: 80}`, `, targets: [{url: "http://127.0.0.1:9001"}]`)
	f(t, `{type: etcd, endpoints: ["127.0.0.1:2379", "http://10.0.0.1:2379"], prefix: /fastgate/svc/, username: u, password: p}`, "")
	f(t, `{type: file, path: /etc/fastgate/svc.yaml}`, "")
	// type
	f(t, `{name: x}`, "", `upstreams.svc.discovery.type: is required: dns, etcd or file`)
	f(t, `{type: consul}`, "", `upstreams.svc.discovery.type: "consul": want dns, etcd or file`)
	// dns
	f(t, `{type: dns}`, "",
		`upstreams.svc.discovery.name: is required: the name to resolve, such as "_users._tcp.svc.local" (SRV) or "users.svc.local" (A/AAAA, with port)`,
		`upstreams.svc.discovery.port: must be 1-65535 for ip records (they carry no port), got 0`)
	f(t, `{type: dns, name: _users._tcp.svc, port: 80}`, "",
		`upstreams.svc.discovery.port: SRV records carry their ports; remove port or set record: ip`)
	f(t, `{type: dns, name: users.svc, record: aaaa, port: 70000}`, "",
		`upstreams.svc.discovery.port: must be 1-65535 for aaaa records (they carry no port), got 70000`)
	f(t, `{type: dns, name: users.svc, record: mx}`, "",
		`upstreams.svc.discovery.record: "mx": want srv, a, aaaa or ip`)
	f(t, `{type: dns, name: _u._tcp.svc, resolvers: ["127.0.0.1", "127.0.0.1:0"]}`, "",
		`upstreams.svc.discovery.resolvers[0]: "127.0.0.1": want "host:port", such as "127.0.0.1:53"`,
		`upstreams.svc.discovery.resolvers[1]: "127.0.0.1:0": want "host:port", such as "127.0.0.1:53"`)
	f(t, `{type: dns, name: _u._tcp.svc, interval: -1s, min_ttl: -1s}`, "",
		`upstreams.svc.discovery.interval: duration "-1s" is negative; it must be >= 0`,
		`upstreams.svc.discovery.min_ttl: duration "-1s" is negative; it must be >= 0`)
	f(t, `{type: dns, name: _u._tcp.svc, interval: 5s, min_ttl: 10s}`, "",
		`upstreams.svc.discovery.min_ttl: 10s is longer than interval 5s`)
	// etcd
	f(t, `{type: etcd}`, "",
		`upstreams.svc.discovery.endpoints: at least one etcd endpoint is required, such as ["127.0.0.1:2379"]`,
		`upstreams.svc.discovery.prefix: is required: the key prefix holding the targets, such as "/fastgate/upstreams/users/"`)
	f(t, `{type: etcd, endpoints: [localhost], prefix: /p/, username: u}`, "",
		`upstreams.svc.discovery.endpoints[0]: "localhost": want "host:port", such as "127.0.0.1:2379"`,
		`upstreams.svc.discovery.username: username and password go together`)
	// file
	f(t, `{type: file}`, "", `upstreams.svc.discovery.path: is required: the JSON or YAML file listing the targets`)
	// fields of another type
	f(t, `{type: file, path: /t.yaml, name: x, port: 1, resolvers: ["127.0.0.1:53"], record: a, interval: 1s, min_ttl: 1s, endpoints: ["127.0.0.1:2379"], prefix: /p, username: u}`, "",
		`upstreams.svc.discovery.name: only applies to type dns`,
		`upstreams.svc.discovery.port: only applies to type dns`,
		`upstreams.svc.discovery.resolvers: only applies to type dns`,
		`upstreams.svc.discovery.record: only applies to type dns`,
		`upstreams.svc.discovery.interval: only applies to type dns`,
		`upstreams.svc.discovery.min_ttl: only applies to type dns`,
		`upstreams.svc.discovery.endpoints: only applies to type etcd`,
		`upstreams.svc.discovery.prefix: only applies to type etcd`,
		`upstreams.svc.discovery.username: only applies to type etcd`)
	f(t, `{type: dns, name: _u._tcp.svc, path: /t.yaml}`, "", `upstreams.svc.discovery.path: only applies to type file`)
	// shared
	f(t, `{type: dns, name: _u._tcp.svc, scheme: ftp, timeout: -1s}`, "",
		`upstreams.svc.discovery.timeout: duration "-1s" is negative; it must be >= 0`,
		`upstreams.svc.discovery.scheme: "ftp": want http or https`)
	f(t, `{type: file, path: /t.yaml, allow_empty: maybe}`, "",
		`upstreams.svc.discovery.allow_empty: want true or false, got string "maybe"`)
	f(t, `{type: file, path: /t.yaml, wait: 1s}`, "",
		`upstreams.svc.discovery.wait: unknown field "wait" (known: type, name, record, port, resolvers, interval, min_ttl, endpoints, prefix, username, password, path, scheme, timeout, allow_empty)`)
	// listed targets are still checked
	f(t, `{type: file, path: /t.yaml}`, `, targets: [{url: "http://127.0.0.1:9001/x"}]`,
		`upstreams.svc.targets[0].url: must not have a path ("/x"): routes own paths; use a route's rewrite.strip_prefix or rewrite.path`)
}

func TestDiscoveryDefaults(t *testing.T) {
	f := func(d string, want Discovery) {
		t.Helper()
		c, err := ParseChecked([]byte("routes: [{upstream: svc}]\nupstreams:\n  svc: {discovery: "+d+"}\n"), "yaml", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := *c.Upstreams["svc"].Discovery; got.Fingerprint() != want.Fingerprint() {
			t.Fatalf("%s: got %+v; want %+v", d, got, want)
		}
	}
	s := func(d time.Duration) Duration { return Duration(d) }
	f(`{type: dns, name: _u._tcp.svc}`, Discovery{Type: "dns", Name: "_u._tcp.svc", Record: "srv", Interval: s(30 * time.Second), MinTTL: s(time.Second), Scheme: "http", Timeout: s(2 * time.Second)})
	f(`{type: dns, name: u.svc, port: 80}`, Discovery{Type: "dns", Name: "u.svc", Record: "ip", Port: 80, Interval: s(30 * time.Second), MinTTL: s(time.Second), Scheme: "http", Timeout: s(2 * time.Second)})
	f(`{type: file, path: /t.yaml}`, Discovery{Type: "file", Path: "/t.yaml", Scheme: "http", Timeout: s(2 * time.Second)})
}
