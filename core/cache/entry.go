package cache

import (
	"encoding/binary"
)

// A stored value is one of:
//
//	entry  'E' born freshUntil swrUntil sieUntil (int64 unix ns, big endian)
//	           status (uint16) headersLen (uint32) headers body
//	vary   'V' names: the response's Vary, each as len (1 byte) name
//	big    'B': the entry is stored with SetBig under key+"\x00"
//
// headers are (nameLen uint16, name, valueLen uint16, value) in the
// response's order. Entries are never modified in place: a refresh
// stores a new one.
const (
	kindEntry = 'E'
	kindVary  = 'V'
	kindBig   = 'B'

	offBorn    = 1
	offFresh   = 9
	offSWR     = 17
	offSIE     = 25
	offStatus  = 33
	offHdrLen  = 35
	entryFixed = 39
)

// entry is a view of a stored entry's bytes; valid while they are.
type entry struct {
	born, fresh, swr, sie int64
	status                int
	headers, body         []byte
}

// decode parses b into e; false when b is not a well-formed entry.
func (e *entry) decode(b []byte) bool {
	if len(b) < entryFixed || b[0] != kindEntry {
		return false
	}
	e.born = int64(binary.BigEndian.Uint64(b[offBorn:]))
	e.fresh = int64(binary.BigEndian.Uint64(b[offFresh:]))
	e.swr = int64(binary.BigEndian.Uint64(b[offSWR:]))
	e.sie = int64(binary.BigEndian.Uint64(b[offSIE:]))
	e.status = int(binary.BigEndian.Uint16(b[offStatus:]))
	n := int(binary.BigEndian.Uint32(b[offHdrLen:]))
	if n > len(b)-entryFixed {
		return false
	}
	e.headers = b[entryFixed : entryFixed+n]
	e.body = b[entryFixed+n:]
	return true
}

// appendEntryHead appends an entry's fixed part to dst, headersLen 0;
// setHeadersLen fixes it once the headers are appended.
func appendEntryHead(dst []byte, born, fresh, swr, sie int64, status int) []byte {
	dst = append(dst, kindEntry)
	dst = binary.BigEndian.AppendUint64(dst, uint64(born))
	dst = binary.BigEndian.AppendUint64(dst, uint64(fresh))
	dst = binary.BigEndian.AppendUint64(dst, uint64(swr))
	dst = binary.BigEndian.AppendUint64(dst, uint64(sie))
	dst = binary.BigEndian.AppendUint16(dst, uint16(status))
	return binary.BigEndian.AppendUint32(dst, 0)
}

// setHeadersLen records the headers' length in an entry being built
// whose headers end at len(b).
func setHeadersLen(b []byte, start int) {
	binary.BigEndian.PutUint32(b[start+offHdrLen:], uint32(len(b)-start-entryFixed))
}

// appendHeader appends one header; false (dst unchanged) when a part is
// longer than 64KiB.
func appendHeader(dst, name, value []byte) ([]byte, bool) {
	if len(name) > 0xffff || len(value) > 0xffff {
		return dst, false
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(name)))
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(value)))
	return append(dst, value...), true
}

// nextHeader returns the first header of an entry's headers and the
// rest; ok false at the end or on a malformed header.
func nextHeader(h []byte) (name, value, rest []byte, ok bool) {
	if len(h) < 2 {
		return nil, nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(h))
	if len(h) < 2+n+2 {
		return nil, nil, nil, false
	}
	name = h[2 : 2+n]
	h = h[2+n:]
	m := int(binary.BigEndian.Uint16(h))
	if len(h) < 2+m {
		return nil, nil, nil, false
	}
	return name, h[2 : 2+m], h[2+m:], true
}

// peekHeader returns the value of the first header named name (lower
// case; names compare case-insensitively) in an entry's headers, or nil.
func peekHeader(h []byte, name string) []byte {
	for {
		k, v, rest, ok := nextHeader(h)
		if !ok {
			return nil
		}
		if equalFold(k, name) {
			return v
		}
		h = rest
	}
}

// appendVary appends a vary spec of names (each at most 255 bytes).
func appendVary(dst []byte, names [][]byte) []byte {
	dst = append(dst, kindVary)
	for _, n := range names {
		dst = append(dst, byte(len(n)))
		dst = append(dst, n...)
	}
	return dst
}

// nextVaryName returns the first name of a vary spec's names and the
// rest; nil at the end.
func nextVaryName(b []byte) (name, rest []byte) {
	if len(b) == 0 || len(b) < 1+int(b[0]) {
		return nil, nil
	}
	n := int(b[0])
	return b[1 : 1+n], b[1+n:]
}
