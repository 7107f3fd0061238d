package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"fastgate/core/config"
)

// resolvConf is where the resolvers come from when discovery.resolvers is
// empty.
const resolvConf = "/etc/resolv.conf"

// dnsSource resolves an SRV name, or a name to A and/or AAAA records, and
// resolves again when the answer's smallest TTL (clamped to [min_ttl,
// interval]) has passed. On failure it keeps asking, with a backoff from
// min_ttl doubling up to interval.
type dnsSource struct {
	name       string // fully qualified
	record     string
	port       int
	scheme     string
	resolvers  []string // "host:port"; empty: those of resolvConf
	resolvConf string
	timeout    time.Duration
	minTTL     time.Duration
	interval   time.Duration

	// sleep waits d or until ctx ends (false); tests replace it with a
	// virtual clock.
	sleep func(ctx context.Context, d time.Duration) bool
}

func newDNSSource(d *config.Discovery) *dnsSource {
	return &dnsSource{
		name: dns.Fqdn(d.Name), record: d.Record, port: d.Port, scheme: d.Scheme,
		resolvers: d.Resolvers, resolvConf: resolvConf,
		timeout: d.Timeout.D(), minTTL: d.MinTTL.D(), interval: d.Interval.D(),
		sleep: sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Run resolves until ctx ends.
func (s *dnsSource) Run(ctx context.Context, emit func([]config.Target), report func(error)) {
	backoff, failing := s.minTTL, false
	for {
		targets, ttl, err := s.resolve(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := s.clamp(ttl)
		if err != nil {
			report(err)
			failing, wait = true, backoff
			backoff = min(2*backoff, s.interval)
		} else {
			if failing {
				report(nil)
			}
			failing, backoff = false, s.minTTL
			emit(targets)
		}
		if !s.sleep(ctx, wait) {
			return
		}
	}
}

func (s *dnsSource) clamp(ttl time.Duration) time.Duration {
	return max(s.minTTL, min(ttl, s.interval))
}

// answer is what one name gave: its records and the smallest TTL among
// them (or the negative-caching TTL when there is none).
type answer struct {
	rrs []dns.RR
	// extra is the additional section (A/AAAA of SRV targets).
	extra []dns.RR
	ttl   time.Duration
}

// resolve returns the current target set and how long it may be cached.
// An empty set (NXDOMAIN, no records) is no error.
func (s *dnsSource) resolve(ctx context.Context) ([]config.Target, time.Duration, error) {
	servers, err := s.servers()
	if err != nil {
		return nil, 0, err
	}
	if s.record == config.RecordSRV {
		return s.resolveSRV(ctx, servers)
	}
	ips, ttl, err := s.resolveHost(ctx, servers, s.name, s.record, nil)
	if err != nil {
		return nil, 0, err
	}
	targets := make([]config.Target, 0, len(ips))
	for _, ip := range ips {
		targets = addTarget(targets, s.url(ip, s.port), 1)
	}
	return targets, ttl, nil
}

// resolveSRV follows RFC 2782: the targets of the lowest priority that
// has any, weights as given (0 counts as 1), each host resolved to its
// addresses from the additional section or by asking.
func (s *dnsSource) resolveSRV(ctx context.Context, servers []string) ([]config.Target, time.Duration, error) {
	a, err := s.query(ctx, servers, s.name, dns.TypeSRV)
	if err != nil {
		return nil, 0, err
	}
	var tier []*dns.SRV
	for _, rr := range a.rrs {
		srv, ok := rr.(*dns.SRV)
		// A target of "." means the service is decidedly not available
		// at this domain (RFC 2782).
		if !ok || srv.Target == "." {
			continue
		}
		if len(tier) > 0 && srv.Priority > tier[0].Priority {
			continue
		}
		if len(tier) > 0 && srv.Priority < tier[0].Priority {
			tier = tier[:0]
		}
		tier = append(tier, srv)
	}
	ttl := a.ttl
	var targets []config.Target
	for _, srv := range tier {
		ips, hostTTL, err := s.resolveHost(ctx, servers, srv.Target, config.RecordIP, a.extra)
		if err != nil {
			return nil, 0, err
		}
		ttl = min(ttl, hostTTL)
		for _, ip := range ips {
			targets = addTarget(targets, s.url(ip, int(srv.Port)), max(int(srv.Weight), 1))
		}
	}
	return targets, ttl, nil
}

// resolveHost returns the addresses of host for record (a, aaaa or ip),
// from extra when it has them, else by asking.
func (s *dnsSource) resolveHost(ctx context.Context, servers []string, host, record string, extra []dns.RR) ([]net.IP, time.Duration, error) {
	ips, ttl := addrsOf(extra, host, record)
	if len(ips) > 0 {
		return ips, ttl, nil
	}
	// An empty answer for one family (no AAAA beside the A records) says
	// nothing about when the other changes: its negative TTL counts only
	// when no family has addresses.
	ttl, negTTL := s.interval, s.interval
	for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if typ == dns.TypeA && record == config.RecordAAAA || typ == dns.TypeAAAA && record == config.RecordA {
			continue
		}
		a, err := s.query(ctx, servers, host, typ)
		if err != nil {
			return nil, 0, err
		}
		got, _ := addrsOf(a.rrs, "", record)
		if len(got) == 0 {
			negTTL = min(negTTL, a.ttl)
			continue
		}
		ips = append(ips, got...)
		ttl = min(ttl, a.ttl)
	}
	if len(ips) == 0 {
		return nil, negTTL, nil
	}
	return ips, ttl, nil
}

// addrsOf returns the A/AAAA addresses in rrs (of owner name, when not
// empty) allowed by record, and their smallest TTL.
func addrsOf(rrs []dns.RR, name, record string) ([]net.IP, time.Duration) {
	var ips []net.IP
	ttl := time.Duration(-1)
	for _, rr := range rrs {
		if name != "" && !strings.EqualFold(rr.Header().Name, name) {
			continue
		}
		var ip net.IP
		switch r := rr.(type) {
		case *dns.A:
			if record != config.RecordAAAA {
				ip = r.A
			}
		case *dns.AAAA:
			if record != config.RecordA {
				ip = r.AAAA
			}
		}
		if ip == nil {
			continue
		}
		ips = append(ips, ip)
		if t := ttlOf(rr); ttl < 0 || t < ttl {
			ttl = t
		}
	}
	return ips, ttl
}

func ttlOf(rr dns.RR) time.Duration { return time.Duration(rr.Header().Ttl) * time.Second }

// addTarget appends the target at url, or adds weight to it when two
// records name the same address.
func addTarget(targets []config.Target, url string, weight int) []config.Target {
	for i := range targets {
		if targets[i].URL == url {
			targets[i].Weight += weight
			return targets
		}
	}
	return append(targets, config.Target{URL: url, Weight: weight})
}

func (s *dnsSource) url(ip net.IP, port int) string {
	return s.scheme + "://" + net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

// servers returns the resolvers to ask, in order.
func (s *dnsSource) servers() ([]string, error) {
	if len(s.resolvers) > 0 {
		return s.resolvers, nil
	}
	cc, err := dns.ClientConfigFromFile(s.resolvConf)
	if err != nil {
		return nil, fmt.Errorf("discovery: dns %s: no resolvers: %w; set discovery.resolvers, such as [\"127.0.0.1:53\"]", strings.TrimSuffix(s.name, "."), err)
	}
	servers := make([]string, 0, len(cc.Servers))
	for _, h := range cc.Servers {
		servers = append(servers, net.JoinHostPort(h, cc.Port))
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("discovery: dns %s: %s lists no nameserver; set discovery.resolvers, such as [\"127.0.0.1:53\"]", strings.TrimSuffix(s.name, "."), s.resolvConf)
	}
	return servers, nil
}

// query asks each server in turn for name's records of type typ, over UDP
// and again over TCP when the answer is truncated. NXDOMAIN and NOERROR
// are answers (maybe empty); anything else, from every server, is an
// error.
func (s *dnsSource) query(ctx context.Context, servers []string, name string, typ uint16) (*answer, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, typ)
	m.SetEdns0(dns.DefaultMsgSize, false)
	var errs []error
	for _, server := range servers {
		r, err := s.exchange(ctx, m, server)
		if err == nil && r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
			err = fmt.Errorf("%s", dns.RcodeToString[r.Rcode])
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
			continue
		}
		return answerOf(r, typ, s.minTTL), nil
	}
	return nil, fmt.Errorf("discovery: dns %s %s: no resolver answered: %w", dns.TypeToString[typ], strings.TrimSuffix(name, "."), errors.Join(errs...))
}

func (s *dnsSource) exchange(ctx context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	qctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	c := &dns.Client{Net: "udp", Timeout: s.timeout, UDPSize: dns.DefaultMsgSize}
	r, _, err := c.ExchangeContext(qctx, m, server)
	if err == nil && r.Truncated {
		// The answer did not fit a datagram: ask again over TCP.
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(qctx, m, server)
	}
	return r, err
}

// answerOf keeps the records of type typ (CNAMEs followed by the server
// are skipped) and the smallest TTL; without records, the negative
// caching TTL of the SOA in the authority section (RFC 2308), else
// fallback.
func answerOf(r *dns.Msg, typ uint16, fallback time.Duration) *answer {
	a := &answer{extra: r.Extra, ttl: -1}
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != typ {
			continue
		}
		a.rrs = append(a.rrs, rr)
		if t := ttlOf(rr); a.ttl < 0 || t < a.ttl {
			a.ttl = t
		}
	}
	if a.ttl >= 0 {
		return a
	}
	a.ttl = fallback
	for _, rr := range r.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			a.ttl = time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
		}
	}
	return a
}
