package lb

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"slices"
	"strings"
)

// maxRingPoints bounds a ring: 160 points per weight unit.
const maxRingPoints = 1 << 22

// Ring is ketama consistent hashing with nginx's point placement: the
// points of a target are exactly those of `server <addr> weight=<w>;` in
// nginx's `hash $key consistent` (ngx_http_upstream_update_chash, nginx
// 1.12+): base = crc32(host "\0" port), with host and port split at the
// last ':' followed only by digits ("unix:" paths have no port), and
// weight×160 points, each crc32(base state + the previous point as 4
// little-endian bytes), starting from 0. Points are sorted; among equal
// hashes the earlier target keeps the point (nginx's qsort leaves that
// undefined).
//
// A key sits at ring position uint32(key), the low 32 bits; its target is
// the first point at or after it, wrapping. nginx hashes the key with
// crc32, so core passing HashCRC32(key) gets nginx's key-to-server mapping
// too; with HashBytes (xxhash) the ring is the same, the key positions
// differ. An unusable or overloaded target hands the key to the next
// points clockwise. Safe for concurrent use.
type Ring struct {
	set    *Set
	points []uint32 // sorted point hashes
	owner  []uint16 // owner[k] is the target of points[k]
	first  []uint32 // first[b]: index of the first point ≥ b<<shift
	shift  uint
	c      float64
}

// NewRing builds the ring over set.
func NewRing(set *Set, opts Options) (*Ring, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	total := 0
	for _, w := range set.weights {
		total += 160 * int(w)
	}
	if total > maxRingPoints {
		return nil, fmt.Errorf("lb: ring of %d points (160 per weight unit) exceeds %d; use smaller weights or maglev", total, maxRingPoints)
	}
	type point struct {
		hash  uint32
		owner uint16
	}
	pts := make([]point, 0, total)
	for i, t := range set.targets {
		base := nginxBaseHash(t.addr)
		var prev [4]byte
		for range 160 * int(set.weights[i]) {
			h := crc32.Update(base, crc32.IEEETable, prev[:])
			pts = append(pts, point{h, uint16(i)})
			binary.LittleEndian.PutUint32(prev[:], h)
		}
	}
	slices.SortStableFunc(pts, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.owner) - int(b.owner)
	})
	pts = slices.CompactFunc(pts, func(a, b point) bool { return a.hash == b.hash })
	r := &Ring{set: set, c: opts.BoundedLoad, points: make([]uint32, len(pts)), owner: make([]uint16, len(pts))}
	for k, p := range pts {
		r.points[k], r.owner[k] = p.hash, p.owner
	}
	r.index()
	return r, nil
}

// nginxBaseHash is the crc32 state after host, "\0" and port, as nginx
// computes it (ngx_crc32_update over the three parts; the state is final
// until more bytes are added, which crc32.Update continues).
func nginxBaseHash(addr string) uint32 {
	host, port := addr, ""
	if len(addr) >= 5 && strings.EqualFold(addr[:5], "unix:") {
		host = addr[5:]
	} else {
		for j := len(addr) - 1; j >= 0; j-- {
			c := addr[j]
			if c == ':' {
				host, port = addr[:j], addr[j+1:]
				break
			}
			if c < '0' || c > '9' {
				break
			}
		}
	}
	h := crc32.Update(0, crc32.IEEETable, []byte(host))
	h = crc32.Update(h, crc32.IEEETable, []byte{0})
	return crc32.Update(h, crc32.IEEETable, []byte(port))
}

// index builds the bucket index over the top bits of the point hashes, so
// a lookup starts next to its point instead of binary searching.
func (r *Ring) index() {
	b := min(max(bits.Len(uint(len(r.points))), 1), 20)
	r.shift = uint(32 - b)
	r.first = make([]uint32, 1<<b)
	k := 0
	for i := range r.first {
		for k < len(r.points) && r.points[k]>>r.shift < uint32(i) {
			k++
		}
		r.first[i] = uint32(k)
	}
}

// find returns the index of the key's point.
func (r *Ring) find(key uint64) int {
	h := uint32(key)
	k := int(r.first[h>>r.shift])
	for k < len(r.points) && r.points[k] < h {
		k++
	}
	if k == len(r.points) {
		k = 0
	}
	return k
}

// Pick implements Balancer: the key's point, else the next points clockwise.
func (r *Ring) Pick(key, skip uint64) int {
	v := r.set.view.Load()
	if len(v.pick) == 0 || len(r.points) == 0 {
		return -1
	}
	k := r.find(key)
	// fast path: the key's own target is usable and bounds are off.
	if i := int(r.owner[k]); r.c == 0 && r.set.usable(i, skip, v.panic) {
		return i
	}
	return r.set.walk(v, r.owner, k, skip, r.c)
}

// Lookup returns the ring's target for key, ignoring health, skip and load.
func (r *Ring) Lookup(key uint64) int {
	if len(r.points) == 0 {
		return -1
	}
	return int(r.owner[r.find(key)])
}

// Points returns the number of points on the ring.
func (r *Ring) Points() int { return len(r.points) }

// HashCRC32 returns the balancing key of b as nginx's consistent hash
// computes it (crc32), for a Ring that must map keys as nginx does.
func HashCRC32(b []byte) uint64 { return uint64(crc32.ChecksumIEEE(b)) }
