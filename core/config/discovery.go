package config

import (
	"fmt"
	"net"
	"strings"
)

// Discovery finds an upstream's targets at run time (package
// core/discovery): from DNS, an etcd key prefix or a watched file. Each
// answer replaces the upstream's target set atomically; balancing state,
// pools and health are kept for the addresses that stay. The upstream's
// own targets, when listed, serve until the first answer. A source that
// fails keeps the last good set; an empty answer keeps it too unless
// allow_empty.
type Discovery struct {
	// Type is dns, etcd or file.
	Type string `json:"type" yaml:"type"`

	// Name is the DNS name to resolve (dns): an SRV name such as
	// "_users._tcp.svc.local" gives hosts, ports, priorities and weights;
	// another name is resolved to A and AAAA records and needs Port.
	Name string `json:"name,omitempty" yaml:"name"`
	// Record is srv, a, aaaa or ip (A and AAAA). Default: srv when Name
	// starts with "_", ip otherwise.
	Record string `json:"record,omitempty" yaml:"record"`
	// Port is the targets' port for a, aaaa and ip records.
	Port int `json:"port,omitempty" yaml:"port"`
	// Resolvers are the DNS servers to ask, "host:port"; default those of
	// /etc/resolv.conf.
	Resolvers []string `json:"resolvers,omitempty" yaml:"resolvers"`
	// Interval caps the time between two resolutions (dns): the answer's
	// TTL is honoured between MinTTL and Interval. Default 30s.
	Interval Duration `json:"interval,omitempty" yaml:"interval"`
	// MinTTL is the shortest time between two resolutions (dns), whatever
	// the TTL says. Default 1s.
	MinTTL Duration `json:"min_ttl,omitempty" yaml:"min_ttl"`

	// Endpoints are the etcd servers, "host:port" (etcd).
	Endpoints []string `json:"endpoints,omitempty" yaml:"endpoints"`
	// Prefix is the etcd key prefix (etcd): every key under it holds one
	// target as JSON, {"url": "http://10.0.0.5:8080", "weight": 2}, or a
	// bare URL.
	Prefix string `json:"prefix,omitempty" yaml:"prefix"`
	// Username and Password authenticate to etcd when set.
	Username string `json:"username,omitempty" yaml:"username"`
	Password string `json:"password,omitempty" yaml:"password"`

	// Path is the watched file (file): a JSON or YAML list of targets,
	// [{url: "http://10.0.0.5:8080", weight: 2}], or {targets: [...]}.
	Path string `json:"path,omitempty" yaml:"path"`

	// Scheme is the scheme of targets made from DNS answers: http
	// (default) or https.
	Scheme string `json:"scheme,omitempty" yaml:"scheme"`
	// Timeout bounds one DNS query or etcd request. Default 2s.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout"`
	// AllowEmpty lets an empty answer (no records, no keys, an empty list)
	// empty the upstream, whose requests then get 503. By default an empty
	// answer keeps the last good set, as a failure does.
	AllowEmpty bool `json:"allow_empty,omitempty" yaml:"allow_empty"`
}

// Discovery types.
const (
	DiscoveryDNS  = "dns"
	DiscoveryEtcd = "etcd"
	DiscoveryFile = "file"
)

// DNS record kinds of discovery.record.
const (
	RecordSRV  = "srv"
	RecordA    = "a"
	RecordAAAA = "aaaa"
	RecordIP   = "ip"
)

// Discovery defaults.
const (
	DefaultDiscoveryInterval = Duration(30e9)
	DefaultDiscoveryMinTTL   = Duration(1e9)
	DefaultDiscoveryTimeout  = Duration(2e9)
)

func (d *Discovery) setDefaults() {
	setZero(&d.Timeout, DefaultDiscoveryTimeout)
	setZero(&d.Scheme, "http")
	if d.Type != DiscoveryDNS {
		return
	}
	setZero(&d.Interval, DefaultDiscoveryInterval)
	setZero(&d.MinTTL, DefaultDiscoveryMinTTL)
	if d.Record == "" {
		d.Record = RecordIP
		if strings.HasPrefix(d.Name, "_") {
			d.Record = RecordSRV
		}
	}
}

// Fingerprint identifies the discovery settings: a source whose settings
// are unchanged by a reload keeps running.
func (d *Discovery) Fingerprint() string { return fmt.Sprintf("%+v", *d) }

// validateDiscovery checks an upstream's discovery block.
func validateDiscovery(errs *Errors, path string, d *Discovery) {
	// Fields of another type are mistakes: say which type they belong to.
	unused := func(field, owner string, set bool) {
		if set {
			errs.add(path+"."+field, fmt.Sprintf("only applies to type %s", owner))
		}
	}
	switch d.Type {
	case DiscoveryDNS:
		validateDNSDiscovery(errs, path, d)
	case DiscoveryEtcd:
		if len(d.Endpoints) == 0 {
			errs.add(path+".endpoints", `at least one etcd endpoint is required, such as ["127.0.0.1:2379"]`)
		}
		for i, e := range d.Endpoints {
			if _, port, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(e, "http://"), "https://")); err != nil || !validPort(port, 1) {
				errs.add(pathIndex(path+".endpoints", i), fmt.Sprintf(`%q: want "host:port", such as "127.0.0.1:2379"`, e))
			}
		}
		if d.Prefix == "" {
			errs.add(path+".prefix", `is required: the key prefix holding the targets, such as "/fastgate/upstreams/users/"`)
		}
		if (d.Username == "") != (d.Password == "") {
			errs.add(path+".username", "username and password go together")
		}
	case DiscoveryFile:
		if d.Path == "" {
			errs.add(path+".path", "is required: the JSON or YAML file listing the targets")
		}
	case "":
		errs.add(path+".type", "is required: dns, etcd or file")
		return
	default:
		errs.add(path+".type", fmt.Sprintf("%q: want dns, etcd or file", d.Type))
		return
	}
	unused("name", DiscoveryDNS, d.Type != DiscoveryDNS && d.Name != "")
	unused("port", DiscoveryDNS, d.Type != DiscoveryDNS && d.Port != 0)
	unused("resolvers", DiscoveryDNS, d.Type != DiscoveryDNS && len(d.Resolvers) > 0)
	unused("record", DiscoveryDNS, d.Type != DiscoveryDNS && d.Record != "")
	unused("interval", DiscoveryDNS, d.Type != DiscoveryDNS && d.Interval != 0)
	unused("min_ttl", DiscoveryDNS, d.Type != DiscoveryDNS && d.MinTTL != 0)
	unused("endpoints", DiscoveryEtcd, d.Type != DiscoveryEtcd && len(d.Endpoints) > 0)
	unused("prefix", DiscoveryEtcd, d.Type != DiscoveryEtcd && d.Prefix != "")
	unused("username", DiscoveryEtcd, d.Type != DiscoveryEtcd && d.Username != "")
	unused("path", DiscoveryFile, d.Type != DiscoveryFile && d.Path != "")
	if d.Scheme != "http" && d.Scheme != "https" {
		errs.add(path+".scheme", fmt.Sprintf("%q: want http or https", d.Scheme))
	}
	positiveDuration(errs, path+".timeout", d.Timeout)
}

func validateDNSDiscovery(errs *Errors, path string, d *Discovery) {
	if d.Name == "" {
		errs.add(path+".name", `is required: the name to resolve, such as "_users._tcp.svc.local" (SRV) or "users.svc.local" (A/AAAA, with port)`)
	}
	switch d.Record {
	case RecordSRV:
		if d.Port != 0 {
			errs.add(path+".port", "SRV records carry their ports; remove port or set record: ip")
		}
	case RecordA, RecordAAAA, RecordIP:
		if d.Port < 1 || d.Port > 65535 {
			errs.add(path+".port", fmt.Sprintf("must be 1-65535 for %s records (they carry no port), got %d", d.Record, d.Port))
		}
	default:
		errs.add(path+".record", fmt.Sprintf("%q: want srv, a, aaaa or ip", d.Record))
	}
	for i, r := range d.Resolvers {
		if _, port, err := net.SplitHostPort(r); err != nil || !validPort(port, 1) {
			errs.add(pathIndex(path+".resolvers", i), fmt.Sprintf(`%q: want "host:port", such as "127.0.0.1:53"`, r))
		}
	}
	positiveDuration(errs, path+".interval", d.Interval)
	positiveDuration(errs, path+".min_ttl", d.MinTTL)
	if d.MinTTL > d.Interval && d.Interval > 0 {
		errs.add(path+".min_ttl", fmt.Sprintf("%s is longer than interval %s", d.MinTTL, d.Interval))
	}
}
