package aggregate

import (
	"slices"
	"strconv"

	"github.com/goccy/go-json"
)

// decodeOptions: numbers decode as json.Number (their text), so integers
// past 2^53 (64-bit ids) keep their digits; strings refer to the body
// instead of copies, which the fanout keeps until the response is encoded.
var decodeOptions = []json.DecodeOptionFunc{useNumber(), json.DecodeNoCopyString()}

// useNumber returns the option json.Decoder.UseNumber sets, for Unmarshal,
// which has none of its own: the flag bit that decodes a number into
// json.Number, found by trying each bit once at start.
func useNumber() json.DecodeOptionFunc {
	for bit := range 8 {
		opt := func(o *json.DecodeOption) { o.Flags |= 1 << bit }
		var v any
		if json.UnmarshalWithOption([]byte("1"), &v, opt) == nil {
			if _, ok := v.(json.Number); ok {
				return opt
			}
		}
	}
	panic("aggregate: BUG: github.com/goccy/go-json decodes no number as json.Number")
}

// decode checks the body and applies target, allow or deny, and rename.
func (s *slot) decode() {
	b := s.b
	if !b.decode {
		// fast path: a group taken whole is checked and placed as it is.
		if !json.Valid(s.body) {
			s.reason = reasonNotJSON
		} else if b.collection && firstByte(s.body) != '[' {
			s.reason = reasonNotArray
		}
		return
	}
	if err := json.UnmarshalWithOption(s.body, &s.src, decodeOptions...); err != nil {
		s.reason = reasonNotJSON
		return
	}
	v := s.src
	if len(b.target) > 0 {
		var ok bool
		if v, ok = lookup(v, b.target); !ok {
			s.reason = b.noTarget
			return
		}
	}
	switch {
	case b.collection:
		list, ok := v.([]any)
		if !ok {
			s.reason = reasonNotArray
			return
		}
		out := make([]any, len(list))
		for i, e := range list {
			if m, ok := e.(map[string]any); ok {
				out[i] = b.transform(m)
			} else {
				out[i] = e
			}
		}
		v = out
	case b.root || b.hasOps():
		m, ok := v.(map[string]any)
		if !ok {
			s.reason = reasonNotObject
			if !b.root {
				s.reason = reasonOpsNoObj
			}
			return
		}
		v = b.transform(m)
	}
	s.val = v
}

func (b *backend) hasOps() bool { return len(b.allow) > 0 || len(b.deny) > 0 || len(b.rename) > 0 }

// transform applies allow or deny, then rename, to m. It changes a copy
// when a later backend's path reads m.
func (b *backend) transform(m map[string]any) map[string]any {
	if !b.hasOps() {
		return m
	}
	if len(b.allow) > 0 {
		out := make(map[string]any, len(b.allow))
		for _, p := range b.allow {
			copyPath(out, m, p)
		}
		m = out
	} else if b.referenced {
		m = cloneMap(m)
	}
	for _, p := range b.deny {
		deletePath(m, p)
	}
	for _, r := range b.rename {
		renamePath(m, r.from, r.to)
	}
	return m
}

// cloneMap copies m deeply in its objects (arrays and scalars are shared),
// so that deleting or renaming nested fields leaves m as it was.
func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = cloneMap(sub)
		}
		out[k] = v
	}
	return out
}

// copyPath copies the value at path p of src into dst, creating the
// objects on the way.
func copyPath(dst, src map[string]any, p []string) {
	v, ok := src[p[0]]
	if !ok {
		return
	}
	if len(p) == 1 {
		dst[p[0]] = v
		return
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return
	}
	d, ok := dst[p[0]].(map[string]any)
	if !ok {
		d = make(map[string]any)
		dst[p[0]] = d
	}
	copyPath(d, sub, p[1:])
}

// parent returns the object holding the last segment of p, or nil.
func parent(m map[string]any, p []string) map[string]any {
	for _, k := range p[:len(p)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = sub
	}
	return m
}

func deletePath(m map[string]any, p []string) {
	if m = parent(m, p); m != nil {
		delete(m, p[len(p)-1])
	}
}

func renamePath(m map[string]any, p []string, to string) {
	if m = parent(m, p); m == nil {
		return
	}
	k := p[len(p)-1]
	if v, ok := m[k]; ok && k != to {
		delete(m, k)
		m[to] = v
	}
}

// lookup returns the value at path p of v: object keys, and array
// indexes for number segments.
func lookup(v any, p []string) (any, bool) {
	for _, k := range p {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// appendField appends the value of the field part p refers to, as text:
// a string, a number's digits or true/false; false for another value or
// none.
func (f *fanout) appendField(dst []byte, p *part) ([]byte, bool) {
	v, ok := lookup(f.slots[p.ref].src, p.field)
	if !ok {
		return dst, false
	}
	switch x := v.(type) {
	case string:
		return append(dst, x...), true
	case json.Number:
		return append(dst, x...), true
	case bool:
		return strconv.AppendBool(dst, x), true
	}
	return dst, false
}

// appendMerged appends the merged object of the backends that succeeded:
// their groups and root fields, in backend order (a later key replaces an
// earlier one), keys sorted.
func (f *fanout) appendMerged(dst []byte) ([]byte, error) {
	if f.t.hasRoot {
		out, err := json.Marshal(f.mergeMap())
		return append(dst, out...), err
	}
	// fast path: groups only, in the sorted order json.Marshal writes a
	// map's keys in, a body taken whole copied as it is
	dst = append(dst, '{')
	first := true
	for _, i := range f.t.sorted {
		s := &f.slots[i]
		if s.failed() {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, s.b.key...)
		if !s.b.decode {
			dst = append(dst, s.body...)
			continue
		}
		out, err := json.Marshal(s.val)
		if err != nil {
			return dst, err
		}
		dst = append(dst, out...)
	}
	return append(dst, '}'), nil
}

// mergeMap is the merged object as a map, for a route that merges
// backends into the root.
func (f *fanout) mergeMap() map[string]any {
	root := make(map[string]any, len(f.slots))
	for i := range f.slots {
		s := &f.slots[i]
		switch {
		case s.failed():
		case s.b.root:
			for k, v := range s.val.(map[string]any) {
				root[k] = v
			}
		case s.b.decode:
			root[s.b.group] = s.val
		default:
			root[s.b.group] = json.RawMessage(s.body)
		}
	}
	return root
}

// firstByte returns the first byte of b that is not JSON whitespace.
func firstByte(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
