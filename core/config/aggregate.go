package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Aggregate is the aggregate terminal: one request fans out to several
// backends whose JSON responses are merged into one JSON object.
//
//	aggregate:
//	  timeout: 800ms
//	  backends:
//	    - {upstream: users, path: "/users/{id}", group: user, required: true, deny: [password_hash]}
//	    - {upstream: orders, path: "/orders?user={id}", group: orders, collection: true}
//	    - {upstream: users, path: "/users/{resp0.manager_id}", group: manager}
type Aggregate struct {
	// Timeout bounds the whole fan-out, from the request's arrival to the
	// last backend's response, dependent calls and retries included: a
	// backend still running then has failed (timed out). Default 30s; zero
	// takes the default.
	Timeout Duration `json:"timeout" yaml:"timeout"`

	// Status is the response status of a complete or partial answer (a
	// failed required backend answers 502 or 504 instead). 200-299 but 204
	// and 205, which have no body. Default 200; zero takes the default.
	Status int `json:"status" yaml:"status"`

	// MaxBody caps each backend's response body, in bytes: a longer body
	// is that backend's failure, and is never buffered beyond the cap.
	// Default 1MiB; zero takes the default.
	MaxBody Size `json:"max_body" yaml:"max_body"`

	// Backends are the calls to make, at most MaxAggregateBackends. At
	// least one. Their responses are merged in this order.
	Backends []AggregateBackend `json:"backends" yaml:"backends"`
}

// AggregateBackend is one call of an aggregate route and what to take of
// its response.
type AggregateBackend struct {
	// Upstream names the upstream the call goes to, with its balancing,
	// retries, health checks, circuit breaker and metrics. Required.
	Upstream string `json:"upstream" yaml:"upstream"`

	// Path is the request URI template: "/users/{id}" or
	// "/orders?user={id}". {name} is the route's path parameter name;
	// {query.NAME} the client's query argument NAME (empty when absent);
	// {respN.a.b} is the value of field a.b of backend N's response (N is
	// the index of an earlier backend; a number segment indexes an array),
	// which makes this backend wait for backend N. Values are
	// percent-encoded for the path or the query. The client's query string
	// is not passed on whole. Required.
	Path string `json:"path" yaml:"path"`

	// Method is the request method. Only GET, the default, is supported:
	// an aggregate reads, and a client body is not fanned out.
	Method string `json:"method" yaml:"method"`

	// Group puts the backend's response under this key of the merged
	// object. Default "": its fields are merged into the root object (the
	// response must then be an object).
	Group string `json:"group" yaml:"group"`

	// Target takes the value at this dotted path of the response ("data"
	// or "result.user") before the other operations; a missing target
	// fails the backend. Default "": the whole response.
	Target string `json:"target" yaml:"target"`

	// Allow keeps only these dotted field paths ("name", "address.city").
	// Default none: every field. Not with Deny.
	Allow []string `json:"allow" yaml:"allow"`

	// Deny removes these dotted field paths ("password_hash"). Default
	// none. Not with Allow.
	Deny []string `json:"deny" yaml:"deny"`

	// Rename renames fields after Allow or Deny: the key is a dotted field
	// path, the value the new name of its last segment, in the same
	// object ("address.zip": postcode). Default none.
	Rename map[string]string `json:"rename" yaml:"rename"`

	// Collection says the response (after Target) is a JSON array; it is
	// placed under Group, which it requires, and Allow, Deny and Rename
	// apply to each element. Default false: an object (or, with a group,
	// any JSON value).
	Collection bool `json:"collection" yaml:"collection"`

	// Required fails the whole response (502, or 504 for a timeout) when
	// this backend fails. Default false: a failure is dropped from a
	// partial response.
	Required bool `json:"required" yaml:"required"`

	// Timeout bounds this backend's call, retries included, within the
	// aggregate's timeout. Default 0: the upstream's timeouts.request.
	Timeout Duration `json:"timeout" yaml:"timeout"`

	// Headers are the client request headers copied to this backend.
	// Default none: only X-Request-ID and X-Forwarded-For, X-Real-Ip,
	// X-Forwarded-Proto and X-Forwarded-Host are sent; Authorization and
	// cookies only when listed.
	Headers []string `json:"headers" yaml:"headers"`
}

// Aggregate defaults and limits.
const (
	DefaultAggregateTimeout = Duration(30 * time.Second)
	DefaultAggregateStatus  = 200
	DefaultAggregateMaxBody = Size(1 << 20)
	// MaxAggregateBackends is the most backends an aggregate route has.
	MaxAggregateBackends = 64
)

func (a *Aggregate) setDefaults() {
	setZero(&a.Timeout, DefaultAggregateTimeout)
	setZero(&a.Status, DefaultAggregateStatus)
	setZero(&a.MaxBody, DefaultAggregateMaxBody)
	for i := range a.Backends {
		setZero(&a.Backends[i].Method, "GET")
	}
}

// AggregatePart is one piece of a backend's path template: literal text,
// a route parameter, or a field of an earlier backend's response.
type AggregatePart struct {
	// Literal is the text of a literal part.
	Literal string
	// Param is the route parameter name of a {name} part.
	Param string
	// Ref is the backend index N of a {respN.field} part; -1 otherwise.
	Ref int
	// Field is the dotted path of a {respN.field} part, split.
	Field []string
	// QueryArg is the client's query argument of a {query.NAME} part.
	QueryArg string
	// Query is true for a part after the "?".
	Query bool
}

// ParseAggregatePath splits backend self's path template into parts.
// {name} must be one of params; {respN.a.b} must name a backend N < self
// and a field.
func ParseAggregatePath(s string, params []string, self int) ([]AggregatePart, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf(`%q must start with "/", such as "/users/{id}"`, s)
	}
	if strings.ContainsAny(s, " \t\r\n\x00#") {
		return nil, fmt.Errorf("%q must not contain spaces, control characters or '#'; percent-encode them", s)
	}
	var parts []AggregatePart
	query := false
	for s != "" {
		open := strings.IndexByte(s, '{')
		lit := s
		if open >= 0 {
			lit = s[:open]
		}
		if strings.IndexByte(lit, '}') >= 0 {
			return nil, fmt.Errorf("unbalanced '}' in %q", s)
		}
		if lit != "" {
			parts = append(parts, AggregatePart{Literal: lit, Ref: -1, Query: query})
			query = query || strings.IndexByte(lit, '?') >= 0
		}
		if open < 0 {
			break
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed '{' in %q", s)
		}
		p, err := parseAggregateRef(s[open+1:open+end], params, self)
		if err != nil {
			return nil, err
		}
		p.Query = query
		parts = append(parts, p)
		s = s[open+end+1:]
	}
	return parts, nil
}

// parseAggregateRef parses the inside of one {...} of a backend path.
func parseAggregateRef(name string, params []string, self int) (AggregatePart, error) {
	head, field, dotted := strings.Cut(name, ".")
	if head == "query" && dotted {
		if !validToken(field) {
			return AggregatePart{}, fmt.Errorf("{%s}: %q is not a query argument name", name, field)
		}
		return AggregatePart{QueryArg: field, Ref: -1}, nil
	}
	if n, ok := strings.CutPrefix(head, "resp"); ok && dotted {
		i, err := strconv.Atoi(n)
		switch {
		case err != nil || i < 0:
			return AggregatePart{}, fmt.Errorf("{%s}: %q is not resp followed by a backend index, such as {resp0.id}", name, head)
		case self == 0:
			return AggregatePart{}, fmt.Errorf("{%s}: the first backend has no earlier backend to refer to; move it after backend %d", name, i)
		case i >= self:
			return AggregatePart{}, fmt.Errorf("{%s} refers to backend %d; a backend may only refer to an earlier one (0-%d), whose response it waits for", name, i, self-1)
		}
		if err := checkFieldPath(field); err != nil {
			return AggregatePart{}, fmt.Errorf("{%s}: %w", name, err)
		}
		return AggregatePart{Ref: i, Field: strings.Split(field, ".")}, nil
	}
	if !slices.Contains(params, name) {
		return AggregatePart{}, fmt.Errorf("unknown parameter {%s} (the route's path has: %s; an earlier backend's field is {respN.field}, the client's query argument {query.NAME})", name, listOrNone(params))
	}
	return AggregatePart{Param: name, Ref: -1}, nil
}

// checkFieldPath checks a dotted field path: non-empty segments.
func checkFieldPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty field path; write a field name or a dotted path such as \"address.city\"")
	}
	for seg := range strings.SplitSeq(p, ".") {
		if seg == "" {
			return fmt.Errorf("field path %q has an empty segment; write names separated by single dots, such as \"address.city\"", p)
		}
	}
	return nil
}

// validateAggregate checks a route's aggregate terminal.
func validateAggregate(errs *Errors, path string, a *Aggregate, upstreams, params []string, paramsOK bool) {
	if a.Status < 200 || a.Status > 299 || a.Status == 204 || a.Status == 205 {
		errs.add(path+".status", fmt.Sprintf("must be 200-299 but 204 and 205 (the answer has a JSON body), got %d", a.Status))
	}
	if a.MaxBody < 0 {
		errs.add(path+".max_body", "must be > 0, such as 1MiB")
	}
	switch n := len(a.Backends); {
	case n == 0:
		errs.add(path+".backends", `required: at least one backend, such as {upstream: users, path: "/users/{id}"}`)
	case n > MaxAggregateBackends:
		errs.add(path+".backends", fmt.Sprintf("%d backends; at most %d", n, MaxAggregateBackends))
	}
	groups := make(map[string]int)
	for i := range a.Backends {
		b := &a.Backends[i]
		bp := pathIndex(path+".backends", i)
		validateRouteUpstream(errs, bp+".upstream", b.Upstream, upstreams)
		validateAggregatePath(errs, bp+".path", b.Path, params, paramsOK, i)
		if b.Method != "GET" {
			errs.add(bp+".method", fmt.Sprintf("%q is not supported; an aggregate backend is called with GET (omit method)", b.Method))
		}
		if strings.ContainsFunc(b.Group, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ',' }) {
			errs.add(bp+".group", fmt.Sprintf("%q must not contain control characters or commas: it names the backend in the X-Fastgate-Failed header", b.Group))
		} else if b.Group != "" {
			if j, dup := groups[b.Group]; dup {
				errs.add(bp+".group", fmt.Sprintf("%q is the group of backends[%d] too; each group is one key of the response", b.Group, j))
			} else {
				groups[b.Group] = i
			}
		}
		validateAggregateFields(errs, bp, b)
		if b.Timeout > a.Timeout && a.Timeout > 0 {
			errs.add(bp+".timeout", fmt.Sprintf("%s exceeds the aggregate's timeout %s, which bounds every backend; lower it or raise aggregate.timeout", b.Timeout, a.Timeout))
		}
		for j, h := range b.Headers {
			validateAggregateHeader(errs, pathIndex(bp+".headers", j), h)
		}
	}
}

func validateAggregatePath(errs *Errors, path, s string, params []string, paramsOK bool, self int) {
	if s == "" {
		errs.add(path, `required: the backend's request path, such as "/users/{id}"`)
		return
	}
	if !paramsOK {
		return
	}
	if _, err := ParseAggregatePath(s, params, self); err != nil {
		errs.add(path, err.Error())
	}
}

// validateAggregateFields checks what a backend takes of its response.
func validateAggregateFields(errs *Errors, bp string, b *AggregateBackend) {
	if b.Collection && b.Group == "" {
		errs.add(bp+".collection", "a collection (a JSON array) needs a group to be placed under; set group")
	}
	if b.Target != "" {
		if err := checkFieldPath(b.Target); err != nil {
			errs.add(bp+".target", err.Error())
		}
	}
	if len(b.Allow) > 0 && len(b.Deny) > 0 {
		errs.add(bp+".deny", "allow and deny exclude each other: list the fields to keep (allow) or to remove (deny)")
	}
	for j, f := range b.Allow {
		if err := checkFieldPath(f); err != nil {
			errs.add(pathIndex(bp+".allow", j), err.Error())
		}
	}
	for j, f := range b.Deny {
		if err := checkFieldPath(f); err != nil {
			errs.add(pathIndex(bp+".deny", j), err.Error())
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b.Rename)) {
		p := pathField(bp+".rename", k)
		if err := checkFieldPath(k); err != nil {
			errs.add(p, err.Error())
		}
		if v := b.Rename[k]; v == "" || strings.Contains(v, ".") {
			errs.add(p, fmt.Sprintf("the new name %q must be a non-empty field name without dots; the field stays in its object", v))
		}
	}
}

// aggregateHeaderDenied are the request headers a backend never gets from
// the client: the gateway sets them per call.
var aggregateHeaderDenied = []string{"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
	"Te", "Trailer", "Upgrade", "Proxy-Connection", "Proxy-Authorization", "Expect",
	"X-Request-Id", "X-Forwarded-For", "X-Real-Ip", "X-Forwarded-Proto", "X-Forwarded-Host"}

func validateAggregateHeader(errs *Errors, path, h string) {
	if !validToken(h) {
		errs.add(path, fmt.Sprintf("%q is not a header name: use letters, digits and !#$%%&'*+-.^_`|~", h))
		return
	}
	for _, d := range aggregateHeaderDenied {
		if strings.EqualFold(h, d) {
			errs.add(path, fmt.Sprintf("%s cannot be copied: the gateway sets it for each backend call", d))
			return
		}
	}
}
