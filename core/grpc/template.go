package grpc

import (
	"fmt"
	"net/url"
	"strings"
)

// template is a parsed google.api.http path template:
//
//	Template = "/" Segments [ Verb ] ;
//	Segments = Segment { "/" Segment } ;
//	Segment  = "*" | "**" | LITERAL | Variable ;
//	Variable = "{" FieldPath [ "=" Segments ] "}" ;
//	Verb     = ":" LITERAL ;
//
// "{sku}" is "{sku=*}"; "**" may only be the last segment. It is
// immutable once parsed.
type template struct {
	segs []tseg
	vars []tvar
	verb string
	// tail: the last segment is "**", matching any number of segments.
	tail bool
}

type tseg struct {
	lit  string
	kind byte // 'l' literal, '*' one segment, '#' any segments (**)
}

// tvar is a variable: the field path it sets and the segments it covers,
// [start, end).
type tvar struct {
	field      []string
	start, end int
}

// parseTemplate parses s.
func parseTemplate(s string) (*template, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("path template %q must start with \"/\"", s)
	}
	t := &template{}
	rest := s[1:]
	// The verb is a ":" after the last "/" outside braces.
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.ContainsAny(rest[i:], "/}") {
		t.verb, rest = rest[i+1:], rest[:i]
		if t.verb == "" {
			return nil, fmt.Errorf("path template %q: empty verb after \":\"", s)
		}
	}
	for rest != "" {
		var seg string
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("path template %q: unclosed \"{\"", s)
			}
			if err := t.addVar(rest[1:end]); err != nil {
				return nil, fmt.Errorf("path template %q: %w", s, err)
			}
			rest = rest[end+1:]
		} else {
			seg, rest, _ = strings.Cut(rest, "/")
			if err := t.addSeg(seg); err != nil {
				return nil, fmt.Errorf("path template %q: %w", s, err)
			}
			if rest == "" {
				break
			}
			continue
		}
		if rest == "" {
			break
		}
		if rest[0] != '/' {
			return nil, fmt.Errorf("path template %q: want \"/\" after a variable", s)
		}
		rest = rest[1:]
		if rest == "" {
			return nil, fmt.Errorf("path template %q: ends with \"/\"", s)
		}
	}
	for i, sg := range t.segs {
		if sg.kind == '#' && i != len(t.segs)-1 {
			return nil, fmt.Errorf("path template %q: \"**\" must be the last segment", s)
		}
	}
	t.tail = len(t.segs) > 0 && t.segs[len(t.segs)-1].kind == '#'
	return t, nil
}

func (t *template) addSeg(seg string) error {
	switch {
	case seg == "*":
		t.segs = append(t.segs, tseg{kind: '*'})
	case seg == "**":
		t.segs = append(t.segs, tseg{kind: '#'})
	case seg == "" || strings.ContainsAny(seg, "{}=*"):
		return fmt.Errorf("bad segment %q", seg)
	default:
		t.segs = append(t.segs, tseg{kind: 'l', lit: seg})
	}
	return nil
}

// addVar adds the variable "field.path" or "field.path=segments".
func (t *template) addVar(v string) error {
	field, sub, hasSub := strings.Cut(v, "=")
	if field == "" {
		return fmt.Errorf("empty variable name in {%s}", v)
	}
	tv := tvar{field: strings.Split(field, "."), start: len(t.segs)}
	if !hasSub {
		sub = "*"
	}
	for seg := range strings.SplitSeq(sub, "/") {
		if err := t.addSeg(seg); err != nil {
			return fmt.Errorf("in {%s}: %w", v, err)
		}
	}
	tv.end = len(t.segs)
	t.vars = append(t.vars, tv)
	return nil
}

// match matches path (no query) and returns the variables' decoded
// values, in t.vars order; ok is false when path does not match.
func (t *template) match(path string) (values []string, ok bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	path = path[1:]
	if t.verb != "" {
		i := strings.LastIndexByte(path, ':')
		if i < 0 || path[i+1:] != t.verb || strings.IndexByte(path[i:], '/') >= 0 {
			return nil, false
		}
		path = path[:i]
	}
	var segs []string
	if path != "" {
		segs = strings.Split(path, "/")
	}
	n := len(t.segs)
	if t.tail {
		if len(segs) < n-1 {
			return nil, false
		}
	} else if len(segs) != n {
		return nil, false
	}
	for i, sg := range t.segs {
		switch sg.kind {
		case 'l':
			if segs[i] != sg.lit {
				return nil, false
			}
		case '*':
			if segs[i] == "" {
				return nil, false
			}
		}
	}
	values = make([]string, len(t.vars))
	for i, v := range t.vars {
		end := v.end
		if t.tail && end == n {
			end = len(segs)
		}
		parts := segs[v.start:end]
		for j, p := range parts {
			d, err := url.PathUnescape(p)
			if err != nil {
				return nil, false
			}
			if j > 0 {
				values[i] += "/"
			}
			values[i] += d
		}
	}
	return values, true
}
