package ipfilter

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"

	"fastgate/core/config"
)

// randomPrefixes returns n random IPv4 /16-/28 prefixes.
func randomPrefixes(n int) []netip.Prefix {
	r := rand.New(rand.NewPCG(7, 7))
	ps := make([]netip.Prefix, n)
	for i := range ps {
		a := netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		ps[i], _ = a.Prefix(16 + r.IntN(13))
	}
	return ps
}

func randomAddrs(n int) []netip.Addr {
	r := rand.New(rand.NewPCG(9, 9))
	as := make([]netip.Addr, n)
	for i := range as {
		as[i] = netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	return as
}

var sink bool

// BenchmarkContains looks up random IPv4 clients in tables of 10 and
// 10,000 prefixes, against the naive scan of the prefixes as a baseline.
func BenchmarkContains(b *testing.B) {
	addrs := randomAddrs(1024)
	for _, n := range []int{10, 10000} {
		ps := randomPrefixes(n)
		tb := NewTable(config.IPRanges(ps))
		b.Run("table/"+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i, s := 0, false
				for pb.Next() {
					s = s != tb.Contains(addrs[i&1023])
					i++
				}
				sink = s
			})
		})
		b.Run("naive/"+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i, s := 0, false
				for pb.Next() {
					a := addrs[i&1023]
					for _, p := range ps {
						if p.Contains(a) {
							s = !s
							break
						}
					}
					i++
				}
				sink = s
			})
		})
	}
}
