package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"
)

// SOAP envelope namespaces.
const (
	NS11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NS12 = "http://www.w3.org/2003/05/soap-envelope"
)

// maxDepth bounds the nesting of a converted document: deeper answers are
// refused rather than recursed into.
const maxDepth = 256

// Options say how XML elements become JSON.
type Options struct {
	// KeepPrefix writes names as they are written (m:Result); false
	// writes local names (Result).
	KeepPrefix bool
	// AttributePrefix is put before attribute names ("@").
	AttributePrefix string
	// Arrays are local names always written as arrays.
	Arrays []string
}

// Doc is a parsed XML document: a flat tree of elements. A Doc is reused
// across documents (Reset keeps its slices) and is not safe for
// concurrent use.
type Doc struct {
	nodes  []node
	attrs  []attr
	scopes []binding
	rd     bytes.Reader
	seen   []bool // scratch of writeObject: children already written
}

// node is one element; indexes are into Doc.nodes, -1 for none.
type node struct {
	prefix, local string
	ns            string // the namespace URI its prefix is bound to
	parent        int32
	first, last   int32 // children
	next          int32 // next sibling
	attrs         [2]int32
	scope         int32 // length of Doc.scopes before its declarations
	text          []byte
	hasText       bool // text holds non-whitespace
}

type attr struct {
	prefix, local string
	value         string
}

type binding struct{ prefix, uri string }

// Reset empties d for the next document.
func (d *Doc) Reset() {
	for i := range d.nodes {
		d.nodes[i] = node{}
	}
	d.nodes = d.nodes[:0]
	d.attrs = d.attrs[:0]
	d.scopes = d.scopes[:0]
}

// errors of Parse; their texts are JSON-safe.
var (
	errNoRoot   = errors.New("the document has no element")
	errTooDeep  = errors.New("elements are nested deeper than 256")
	errUnclosed = errors.New("an element is not closed at the end of the document")
)

// Parse reads the XML document b into d, checking that it is well-formed
// (element nesting, syntax, characters). Comments, processing
// instructions and directives are skipped; text outside the root element
// is ignored.
func (d *Doc) Parse(b []byte) error {
	d.Reset()
	d.rd.Reset(b)
	dec := xml.NewDecoder(&d.rd)
	var stack [maxDepth + 1]int32
	depth := 0
	root := false
	for {
		tok, err := dec.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && root {
				return errors.New("the document has more than one root element")
			}
			if depth == maxDepth {
				return errTooDeep
			}
			root = true
			parent := int32(-1)
			if depth > 0 {
				parent = stack[depth-1]
			}
			i := d.open(&t, parent)
			stack[depth] = i
			depth++
		case xml.EndElement:
			if depth == 0 {
				return errors.New("the document closes an element it did not open")
			}
			n := &d.nodes[stack[depth-1]]
			if n.prefix != t.Name.Space || n.local != t.Name.Local {
				return errors.New("element <" + jsonSafe(qname(n.prefix, n.local)) + "> is closed by </" + jsonSafe(qname(t.Name.Space, t.Name.Local)) + ">")
			}
			d.scopes = d.scopes[:n.scope]
			depth--
		case xml.CharData:
			if depth > 0 {
				n := &d.nodes[stack[depth-1]]
				n.text = append(n.text, t...)
				n.hasText = n.hasText || len(bytes.TrimSpace(t)) > 0
			} else if len(bytes.TrimSpace(t)) > 0 {
				return errors.New("the document has text outside its root element")
			}
		}
	}
	if !root {
		return errNoRoot
	}
	if depth != 0 {
		return errUnclosed
	}
	return nil
}

// open appends the element t under parent and binds its namespace
// declarations until its end.
func (d *Doc) open(t *xml.StartElement, parent int32) int32 {
	i := int32(len(d.nodes))
	scope := int32(len(d.scopes))
	start := int32(len(d.attrs))
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "xmlns":
			d.scopes = append(d.scopes, binding{a.Name.Local, a.Value})
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			d.scopes = append(d.scopes, binding{"", a.Value})
		default:
			d.attrs = append(d.attrs, attr{prefix: a.Name.Space, local: a.Name.Local, value: a.Value})
		}
	}
	d.nodes = append(d.nodes, node{
		prefix: t.Name.Space, local: t.Name.Local, ns: d.lookup(t.Name.Space),
		parent: parent, first: -1, last: -1, next: -1,
		attrs: [2]int32{start, int32(len(d.attrs))}, scope: scope,
	})
	if parent >= 0 {
		p := &d.nodes[parent]
		if p.last >= 0 {
			d.nodes[p.last].next = i
		} else {
			p.first = i
		}
		p.last = i
	}
	return i
}

// lookup returns the URI prefix is bound to, "" when unbound.
func (d *Doc) lookup(prefix string) string {
	for i := len(d.scopes) - 1; i >= 0; i-- {
		if d.scopes[i].prefix == prefix {
			return d.scopes[i].uri
		}
	}
	return ""
}

func qname(prefix, local string) string {
	if prefix == "" {
		return local
	}
	return prefix + ":" + local
}

// Root returns the root element's index (0) once parsed.
func (d *Doc) Root() int32 { return 0 }

// Child returns the first child of element i with local name local, or -1.
func (d *Doc) Child(i int32, local string) int32 {
	for c := d.nodes[i].first; c >= 0; c = d.nodes[c].next {
		if d.nodes[c].local == local {
			return c
		}
	}
	return -1
}

// FirstChild returns element i's first child element, or -1.
func (d *Doc) FirstChild(i int32) int32 { return d.nodes[i].first }

// Local returns element i's local name; NS its namespace URI.
func (d *Doc) Local(i int32) string { return d.nodes[i].local }

// NS returns the namespace URI of element i.
func (d *Doc) NS(i int32) string { return d.nodes[i].ns }

// Text returns the text directly inside element i (its children's
// excluded), trimmed of surrounding whitespace.
func (d *Doc) Text(i int32) []byte { return bytes.TrimSpace(d.nodes[i].text) }

// AppendJSON appends the JSON value of element i to dst: the text of an
// element with neither attributes nor child elements as a string, an
// object otherwise.
func (d *Doc) AppendJSON(dst []byte, i int32, o *Options) []byte {
	n := &d.nodes[i]
	if n.first < 0 && n.attrs[0] == n.attrs[1] {
		return appendJSONString(dst, n.text)
	}
	return d.appendObject(dst, i, o)
}

func (d *Doc) appendObject(dst []byte, i int32, o *Options) []byte {
	n := &d.nodes[i]
	dst = append(dst, '{')
	comma := false
	for _, a := range d.attrs[n.attrs[0]:n.attrs[1]] {
		dst = appendComma(dst, &comma)
		dst = appendKey(dst, o.AttributePrefix, a.prefix, a.local, o.KeepPrefix)
		dst = appendJSONString(dst, []byte(a.value))
	}
	if n.first < 0 {
		if len(n.text) > 0 {
			dst = appendComma(dst, &comma)
			dst = append(dst, `"#text":`...)
			dst = appendJSONString(dst, n.text)
		}
		return append(dst, '}')
	}
	// Children are grouped by key in the order of their first appearance;
	// seen marks those written, indexed from the first child.
	base := n.first
	count := int(n.last-n.first) + 1
	mark := len(d.seen)
	d.seen = append(d.seen, make([]bool, count)...)
	for c := n.first; c >= 0; c = d.nodes[c].next {
		if d.seen[mark+int(c-base)] {
			continue
		}
		cn := &d.nodes[c]
		dst = appendComma(dst, &comma)
		dst = appendKey(dst, "", cn.prefix, cn.local, o.KeepPrefix)
		array := o.isArray(cn.local)
		for s := cn.next; s >= 0 && !array; s = d.nodes[s].next {
			array = sameKey(cn, &d.nodes[s], o.KeepPrefix)
		}
		if !array {
			dst = d.AppendJSON(dst, c, o)
			continue
		}
		dst = append(dst, '[')
		dst = d.AppendJSON(dst, c, o)
		for s := cn.next; s >= 0; s = d.nodes[s].next {
			if !d.seen[mark+int(s-base)] && sameKey(cn, &d.nodes[s], o.KeepPrefix) {
				d.seen[mark+int(s-base)] = true
				dst = append(dst, ',')
				dst = d.AppendJSON(dst, s, o)
			}
		}
		dst = append(dst, ']')
	}
	d.seen = d.seen[:mark]
	if n.hasText {
		dst = appendComma(dst, &comma)
		dst = append(dst, `"#text":`...)
		dst = appendJSONString(dst, bytes.TrimSpace(n.text))
	}
	return append(dst, '}')
}

func (o *Options) isArray(local string) bool {
	for _, a := range o.Arrays {
		if a == local {
			return true
		}
	}
	return false
}

func sameKey(a, b *node, keepPrefix bool) bool {
	return a.local == b.local && (!keepPrefix || a.prefix == b.prefix)
}

func appendComma(dst []byte, comma *bool) []byte {
	if *comma {
		dst = append(dst, ',')
	}
	*comma = true
	return dst
}

func appendKey(dst []byte, before, prefix, local string, keepPrefix bool) []byte {
	dst = append(dst, '"')
	dst = appendJSONInner(dst, before)
	if keepPrefix && prefix != "" {
		dst = appendJSONInner(dst, prefix)
		dst = append(dst, ':')
	}
	dst = appendJSONInner(dst, local)
	return append(dst, `":`...)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	dst = appendJSONInner(dst, s)
	return append(dst, '"')
}

const hex = "0123456789abcdef"

func appendJSONInner[T string | []byte](dst []byte, s T) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		var b [utf8.UTFMax]byte
		r, size := utf8.DecodeRune(b[:copy(b[:], s[i:])])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// jsonSafe returns s escaped for the inside of a JSON string.
func jsonSafe(s string) string { return string(appendJSONInner(nil, s)) }

// appendInt appends n in decimal.
func appendInt(dst []byte, n int) []byte { return strconv.AppendInt(dst, int64(n), 10) }
