package lb

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// TestRingNginxPoints checks the point hashes against nginx's definition
// computed the direct way: crc32 over host "\0" port and the previous
// point as 4 little-endian bytes.
func TestRingNginxPoints(t *testing.T) {
	f := func(addr, host, port string) {
		t.Helper()
		s, _ := NewSet([]*Target{NewTarget(addr, 1)}, nil, SetOptions{})
		r, _ := NewRing(s, Options{})
		want := map[uint32]bool{}
		prev := uint32(0)
		for range 160 {
			b := append([]byte(host+"\x00"+port), 0, 0, 0, 0)
			binary.LittleEndian.PutUint32(b[len(b)-4:], prev)
			prev = crc32.ChecksumIEEE(b)
			want[prev] = true
		}
		if len(r.points) != len(want) {
			t.Fatalf("%s: got %d points; want %d", addr, len(r.points), len(want))
		}
		for _, p := range r.points {
			if !want[p] {
				t.Fatalf("%s: got point %08x; not one of nginx's", addr, p)
			}
		}
	}
	f("10.0.0.1:8080", "10.0.0.1", "8080")
	f("backend.example:80", "backend.example", "80")
	f("backend.example", "backend.example", "")
	f("unix:/run/app.sock", "/run/app.sock", "")
	f("[::1]:8080", "[::1]", "8080")
}

func ringAddr(tb testing.TB, s *Set) func(uint64) string {
	r, err := NewRing(s, Options{})
	if err != nil {
		tb.Fatalf("NewRing: %s", err)
	}
	return func(k uint64) string { return s.targets[r.Lookup(k)].addr }
}

// TestRingRemapOnAdd adds the n-th target for n = 2..100. Ketama places
// 160 points per target, so a target's share of the ring, and with it the
// keys that move to it, varies by about 1/sqrt(160) ≈ 8% from 1/n (one
// standard deviation). What holds for every n is minimal disruption: every
// moved key moves to the new target. The ratio to 1/n is asserted within
// 0.95..1.10 on average over the 99 additions, and within 0.75..1.25 for
// each one (3σ).
func TestRingRemapOnAdd(t *testing.T) {
	keys := randomKeys(100000)
	var sum, lo, hi float64 = 0, 10, 0
	for n := 2; n <= 100; n++ {
		before := ringAddr(t, testSet(t, SetOptions{}, ones(n-1)...))
		after := ringAddr(t, testSet(t, SetOptions{}, ones(n)...))
		added := testSet(t, SetOptions{}, ones(n)...).targets[n-1].addr
		moved := 0
		for _, k := range keys {
			if a, b := before(k), after(k); a != b {
				if b != added {
					t.Fatalf("ring: adding target %d moved a key from %s to %s; want moves to %s only", n, a, b, added)
				}
				moved++
			}
		}
		r := float64(moved) / float64(len(keys)) * float64(n)
		if n%10 == 0 || n < 6 {
			t.Logf("ring: adding target %d remaps %.3f × 1/n of keys", n, r)
		}
		if r < 0.75 || r > 1.25 {
			t.Fatalf("ring: adding target %d: got %.3f × 1/n remapped; want 0.75..1.25", n, r)
		}
		sum, lo, hi = sum+r, min(lo, r), max(hi, r)
	}
	mean := sum / 99
	t.Logf("ring: remap ratio to 1/n over n=2..100: mean %.3f, min %.3f, max %.3f", mean, lo, hi)
	if mean < 0.95 || mean > 1.10 {
		t.Fatalf("ring: got mean remap %.3f × 1/n; want 0.95..1.10", mean)
	}
}

func TestRingFind(t *testing.T) {
	r, _ := NewRing(testSet(t, SetOptions{}, ones(7)...), Options{})
	for _, k := range randomKeys(10000) {
		h := uint32(k)
		want := 0 // the first point ≥ h, wrapping
		for want < len(r.points) && r.points[want] < h {
			want++
		}
		if want == len(r.points) {
			want = 0
		}
		if got := r.find(k); got != want {
			t.Fatalf("key %08x: got point %d; want %d", h, got, want)
		}
	}
}
