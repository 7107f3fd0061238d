package config

import (
	"fmt"
	"strings"
)

// SegmentKind is the kind of one path-template segment.
type SegmentKind uint8

const (
	// Static matches the segment's literal text exactly.
	Static SegmentKind = iota
	// Param ("{name}") matches one whole non-empty path segment.
	Param
	// CatchAll ("{name:*}") is always last and matches the rest of the path,
	// possibly empty.
	CatchAll
)

// Segment is one "/"-separated part of a path template.
type Segment struct {
	Kind SegmentKind
	// Value is the literal text for Static, the parameter name otherwise.
	Value string
}

// ParsePathTemplate splits a route path template such as
// "/api/users/{id}" or "/static/{file:*}" into segments. The template must
// start with "/"; a parameter must be a whole segment; "{name:*}" only as
// the last segment; parameter names are unique.
func ParsePathTemplate(s string) ([]Segment, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("must start with \"/\", got %q", s)
	}
	if strings.ContainsAny(s, "?#") {
		return nil, fmt.Errorf("%q must not contain '?' or '#': the path is matched without the query (match query arguments with match.query)", s)
	}
	parts := strings.Split(s[1:], "/")
	segs := make([]Segment, 0, len(parts))
	seen := make(map[string]bool)
	for i, p := range parts {
		if p == "" && i != len(parts)-1 {
			// The path is matched after normalization collapses "//", so an
			// empty segment before the last could never match.
			return nil, fmt.Errorf("segment %d of %q is empty; write a single \"/\" between segments", i+1, s)
		}
		seg, err := parseSegment(p)
		if err != nil {
			return nil, fmt.Errorf("segment %d %q: %w", i+1, p, err)
		}
		if seg.Kind == CatchAll && i != len(parts)-1 {
			return nil, fmt.Errorf("segment %d %q: a catch-all {name:*} must be the last segment", i+1, p)
		}
		if seg.Kind != Static {
			if seen[seg.Value] {
				return nil, fmt.Errorf("parameter {%s} appears twice", seg.Value)
			}
			seen[seg.Value] = true
		}
		segs = append(segs, seg)
	}
	if len(seen) > MaxPathParams {
		return nil, fmt.Errorf("%d parameters; at most %d", len(seen), MaxPathParams)
	}
	return segs, nil
}

// MaxPathParams is the most parameters a path template may have: the
// request path keeps them in a fixed array.
const MaxPathParams = 16

func parseSegment(p string) (Segment, error) {
	open := strings.IndexByte(p, '{')
	end := strings.IndexByte(p, '}')
	if open < 0 && end < 0 {
		return Segment{Kind: Static, Value: p}, nil
	}
	if open != 0 || end != len(p)-1 || strings.Count(p, "{") != 1 || strings.Count(p, "}") != 1 {
		return Segment{}, fmt.Errorf("a parameter must be a whole segment such as {id} or {rest:*}")
	}
	name := p[1 : len(p)-1]
	kind := Param
	if n, ok := strings.CutSuffix(name, ":*"); ok {
		name, kind = n, CatchAll
	}
	if !validParamName(name) {
		return Segment{}, fmt.Errorf("parameter name %q must be letters, digits or '_' (regular expressions are not supported)", name)
	}
	return Segment{Kind: kind, Value: name}, nil
}

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// RewritePart is one piece of a rewrite template: literal text, or a
// parameter reference when Param is true.
type RewritePart struct {
	Param bool
	// Value is the literal text, or the parameter name.
	Value string
}

// ParseRewriteTemplate splits a rewrite template such as "/users/{id}" or
// "/orders?user={id}" into its path parts and its query parts (after "?").
// Every referenced parameter must be in params (the route's path
// parameters).
func ParseRewriteTemplate(s string, params []string) (path, query []RewritePart, err error) {
	if !strings.HasPrefix(s, "/") {
		return nil, nil, fmt.Errorf("must start with \"/\", got %q", s)
	}
	p, q, hasQuery := strings.Cut(s, "?")
	if path, err = parseRewriteParts(p, params); err != nil {
		return nil, nil, err
	}
	if hasQuery {
		if query, err = parseRewriteParts(q, params); err != nil {
			return nil, nil, err
		}
	}
	return path, query, nil
}

func parseRewriteParts(s string, params []string) ([]RewritePart, error) {
	var parts []RewritePart
	for s != "" {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			if strings.IndexByte(s, '}') >= 0 {
				return nil, fmt.Errorf("unbalanced '}' in %q", s)
			}
			parts = append(parts, RewritePart{Value: s})
			break
		}
		if open > 0 {
			if strings.IndexByte(s[:open], '}') >= 0 {
				return nil, fmt.Errorf("unbalanced '}' in %q", s)
			}
			parts = append(parts, RewritePart{Value: s[:open]})
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed '{' in %q", s)
		}
		name := s[open+1 : open+end]
		if !containsString(params, name) {
			return nil, fmt.Errorf("unknown parameter {%s} (the route's path has: %s)", name, listOrNone(params))
		}
		parts = append(parts, RewritePart{Param: true, Value: name})
		s = s[open+end+1:]
	}
	return parts, nil
}

// ParamNames returns the parameter names of segs in order.
func ParamNames(segs []Segment) []string {
	var names []string
	for _, s := range segs {
		if s.Kind != Static {
			names = append(names, s.Value)
		}
	}
	return names
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func listOrNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, ", ")
}
