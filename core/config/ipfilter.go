package config

import (
	"fmt"
	"net/netip"
	"slices"
)

// IPRules allow or deny clients by IP: the client IP past
// server.trusted_proxies (the rightmost untrusted X-Forwarded-For entry),
// never the leftmost X-Forwarded-For entry. Both the top-level rules and
// the route's apply, the top-level first; a client must pass both.
// IPv4-mapped IPv6 clients (::ffff:10.0.0.1) match IPv4 rules.
type IPRules struct {
	// Allow lists IPs ("10.0.0.1", "2001:db8::1") or CIDRs ("10.0.0.0/8",
	// "2001:db8::/32"). When not empty, only clients in one of them are
	// admitted; the others get 403. Default empty: every client not
	// denied is admitted.
	Allow []string `json:"allow" yaml:"allow"`
	// Deny lists IPs or CIDRs refused with 403. Deny wins over allow: a
	// client in both is refused. Default empty: none refused.
	Deny []string `json:"deny" yaml:"deny"`
}

// IsZero reports whether r has no rule.
func (r *IPRules) IsZero() bool { return r == nil || len(r.Allow) == 0 && len(r.Deny) == 0 }

// IPRange is the addresses First through Last, both 16-byte (IPv4 as
// IPv4-mapped IPv6, ::ffff:a.b.c.d), so IPv4 and IPv6 rules sort into one
// space.
type IPRange struct {
	First, Last netip.Addr
}

// ParseIPRule parses an ip rule entry: an IP or a CIDR without host bits.
// Its errors say what to write instead.
func ParseIPRule(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has a zone (%%%s); write the address without it", s, a.Zone())
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf(`%q is not an IP or CIDR; write one such as "10.0.0.1", "10.0.0.0/8" or "2001:db8::/32"`, s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf(`%q has host bits set: its network is %q; write %q for the network, or %q for the one address`,
			s, m.String(), m.String(), p.Addr().String())
	}
	return p, nil
}

// IPRanges returns the addresses of prefixes as sorted, disjoint,
// non-adjacent ranges: overlapping and touching prefixes are merged. nil
// for none.
func IPRanges(prefixes []netip.Prefix) []IPRange {
	rs := make([]IPRange, 0, len(prefixes))
	for _, p := range prefixes {
		rs = append(rs, prefixRange(p))
	}
	return merge(rs)
}

// merge sorts rs and merges its overlapping and touching ranges, in place.
func merge(rs []IPRange) []IPRange {
	slices.SortFunc(rs, func(a, b IPRange) int { return a.First.Compare(b.First) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && touches(out[n-1].Last, r.First) {
			out[n-1].Last = maxAddr(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil
	}
	return slices.Clip(out)
}

// touches reports whether the range ending at last reaches next: next is at
// most one past last.
func touches(last, next netip.Addr) bool {
	if next.Compare(last) <= 0 {
		return true
	}
	n := last.Next()
	return n.IsValid() && n == next
}

// prefixRange returns p's first and last addresses in the 16-byte space.
func prefixRange(p netip.Prefix) IPRange {
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	first := p.Masked().Addr().As16()
	last := first
	for i := bits; i < 128; i++ {
		last[i/8] |= 0x80 >> (i % 8)
	}
	return IPRange{First: netip.AddrFrom16(first), Last: netip.AddrFrom16(last)}
}

// intersectRanges returns the addresses in both a and b (sorted, merged).
func intersectRanges(a, b []IPRange) []IPRange {
	var out []IPRange
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo := maxAddr(a[i].First, b[j].First)
		hi := minAddr(a[i].Last, b[j].Last)
		if lo.Compare(hi) <= 0 {
			out = append(out, IPRange{lo, hi})
		}
		if a[i].Last.Compare(b[j].Last) < 0 {
			i++
		} else {
			j++
		}
	}
	return out
}

// coveredBy reports whether every address of a is in b.
func coveredBy(a, b []IPRange) bool {
	j := 0
	for _, r := range a {
		for j < len(b) && b[j].Last.Compare(r.First) < 0 {
			j++
		}
		// b is merged: one range of b must hold all of r.
		if j == len(b) || b[j].First.Compare(r.First) > 0 || b[j].Last.Compare(r.Last) < 0 {
			return false
		}
	}
	return true
}

func maxAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) >= 0 {
		return a
	}
	return b
}

func minAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) <= 0 {
		return a
	}
	return b
}

// validateIPConfig checks the top-level and routes' ip rules.
func validateIPConfig(errs *Errors, c *Config) {
	topAllow, topDeny, topOK := validateIPRules(errs, "ip", &c.IP)
	if topOK && len(topAllow) > 0 && coveredBy(topAllow, topDeny) {
		errs.add("ip.allow", "every address it lists is also in ip.deny, and deny wins: no client would be admitted on any route; remove the deny entries that cover it, or remove allow")
	}
	for i, r := range c.Routes {
		if r == nil || r.IP == nil {
			continue
		}
		p := pathIndex("routes", i) + ".ip"
		allow, deny, ok := validateIPRules(errs, p, r.IP)
		if !ok || !topOK || len(allow) == 0 {
			continue
		}
		if len(topAllow) > 0 {
			if allow = intersectRanges(allow, topAllow); len(allow) == 0 {
				errs.add(p+".allow", "no address it lists is in the top-level ip.allow, and a client must pass both: no client would be admitted; widen ip.allow or fix this list")
				continue
			}
		}
		if coveredBy(allow, mergeRanges(topDeny, deny)) {
			errs.add(p+".allow", "every address it admits is denied by this route's ip.deny or the top-level ip.deny, and deny wins: no client would be admitted; remove the deny entries that cover it, or remove allow")
		}
	}
}

// validateIPRules checks r's entries and returns their ranges; ok is false
// when an entry is bad.
func validateIPRules(errs *Errors, path string, r *IPRules) (allow, deny []IPRange, ok bool) {
	allow, okA := validateIPList(errs, path+".allow", r.Allow)
	deny, okD := validateIPList(errs, path+".deny", r.Deny)
	return allow, deny, okA && okD
}

func validateIPList(errs *Errors, path string, list []string) ([]IPRange, bool) {
	ok := true
	ps := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := ParseIPRule(s)
		if err != nil {
			errs.add(pathIndex(path, i), err.Error())
			ok = false
			continue
		}
		ps = append(ps, p)
	}
	return IPRanges(ps), ok
}

// mergeRanges returns the union of a and b, sorted and merged.
func mergeRanges(a, b []IPRange) []IPRange {
	return merge(append(slices.Clone(a), b...))
}
