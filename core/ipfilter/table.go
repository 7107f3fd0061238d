package ipfilter

import (
	"encoding/binary"
	"net/netip"

	"fastgate/core/config"
)

// Table is a set of IP addresses compiled for lookup: sorted, merged,
// disjoint ranges, IPv4 ones as uint32 pairs and the others as 128-bit
// pairs, searched by binary search, so a list of thousands of CIDRs costs
// a dozen comparisons and no allocation. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are looked up as IPv4. A Table is immutable and safe
// for concurrent use.
type Table struct {
	v4first, v4last []uint32
	v6first, v6last []u128
}

// u128 is an IPv6 address as a big-endian 128-bit number.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// The IPv4-mapped block ::ffff:0.0.0.0 - ::ffff:255.255.255.255.
var (
	v4MappedFirst = u128{0, 0xffff_0000_0000}
	v4MappedLast  = u128{0, 0xffff_ffff_ffff}
)

// NewTable compiles the ranges of config.IPRanges (sorted, merged).
func NewTable(rs []config.IPRange) *Table {
	t := &Table{}
	for _, r := range rs {
		first, last := u128Of(r.First), u128Of(r.Last)
		if first.less(v4MappedFirst) {
			t.add6(first, minU(last, u128{0, v4MappedFirst.lo - 1}))
		}
		if !last.less(v4MappedFirst) && !v4MappedLast.less(first) {
			lo, hi := maxU(first, v4MappedFirst), minU(last, v4MappedLast)
			t.v4first = append(t.v4first, uint32(lo.lo))
			t.v4last = append(t.v4last, uint32(hi.lo))
		}
		if v4MappedLast.less(last) {
			t.add6(maxU(first, u128{0, v4MappedLast.lo + 1}), last)
		}
	}
	return t
}

func (t *Table) add6(first, last u128) {
	t.v6first = append(t.v6first, first)
	t.v6last = append(t.v6last, last)
}

func minU(a, b u128) u128 {
	if a.less(b) {
		return a
	}
	return b
}

func maxU(a, b u128) u128 {
	if a.less(b) {
		return b
	}
	return a
}

// Len returns the number of ranges.
func (t *Table) Len() int { return len(t.v4first) + len(t.v6first) }

// Contains reports whether a is in the table. An invalid a is in none.
func (t *Table) Contains(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return t.contains4(binary.BigEndian.Uint32(b[:]))
	}
	if !a.IsValid() {
		return false
	}
	return t.contains6(u128Of(a))
}

func (t *Table) contains4(k uint32) bool {
	first := t.v4first
	// The first range starting after k; the one before it is the only
	// one that may hold k.
	lo, hi := 0, len(first)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if first[m] <= k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && k <= t.v4last[lo-1]
}

func (t *Table) contains6(k u128) bool {
	first := t.v6first
	lo, hi := 0, len(first)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if !k.less(first[m]) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo > 0 && !t.v6last[lo-1].less(k)
}
