package core

import (
	"bytes"
	"sort"
	"strings"

	"fastgate/core/config"
)

// maxParams bounds the parameters of one path template, so the per-request
// parameter spans live in a fixed array.
const maxParams = config.MaxPathParams

// span is a parameter's value: path[start:end] of the normalized path.
type span struct{ start, end int }

// router matches a request to a route. It is built once per snapshot and
// only read afterwards, so it is safe for concurrent use.
//
// Priority, documented in the README:
//  1. host: the exact host's routes, then wildcard hosts (longest suffix
//     first), then the routes without hosts. The first table with a route
//     that matches everything wins.
//  2. path, within a table: static segment before {param} before
//     {rest:*}, segment by segment, backtracking when a deeper segment
//     fails (as fasthttp/router does).
//  3. on the same template: routes with more header and query conditions
//     first, then routes restricted to methods, then config order.
//
// No route matching but some path and conditions matching with another
// method: 405 with Allow. Nothing: 404.
//
// fasthttp/router's radix tree is not used on the hot path: it copies every
// parameter value into a new string and boxes it into the RequestCtx, an
// allocation per parameter per request. This trie keeps parameters as spans
// of the path and allocates nothing.
type router struct {
	exact    map[string]*node
	wildcard []wildcardTable
	anyHost  *node
}

type wildcardTable struct {
	suffix []byte // ".example.com"
	root   *node
}

// node is one segment position in a host's path trie.
type node struct {
	label   string // the static segment this node was reached by
	statics []*node
	// byLabel indexes statics when there are many; a linear scan is faster
	// for a few.
	byLabel  map[string]*node
	param    *node
	catchAll []*route // routes whose template ends with {name:*} here
	routes   []*route // routes whose template ends exactly here
}

func newRouter() *router {
	return &router{exact: make(map[string]*node)}
}

// add inserts r for its hosts (or any host) under its parsed template segs.
func (rt *router) add(r *route, hosts []string, segs []config.Segment) {
	if len(hosts) == 0 {
		if rt.anyHost == nil {
			rt.anyHost = &node{}
		}
		rt.anyHost.insert(r, segs)
		return
	}
	for _, h := range hosts {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			rt.wildcardRoot(suffix).insert(r, segs)
			continue
		}
		root := rt.exact[h]
		if root == nil {
			root = &node{}
			rt.exact[h] = root
		}
		root.insert(r, segs)
	}
}

func (rt *router) wildcardRoot(suffix string) *node {
	for _, w := range rt.wildcard {
		if string(w.suffix) == suffix {
			return w.root
		}
	}
	root := &node{}
	rt.wildcard = append(rt.wildcard, wildcardTable{suffix: []byte(suffix), root: root})
	sort.SliceStable(rt.wildcard, func(i, j int) bool {
		return len(rt.wildcard[i].suffix) > len(rt.wildcard[j].suffix)
	})
	return root
}

// finish orders every node's routes by priority. Called once after all adds.
func (rt *router) finish() {
	for _, root := range rt.exact {
		root.finish()
	}
	for _, w := range rt.wildcard {
		w.root.finish()
	}
	if rt.anyHost != nil {
		rt.anyHost.finish()
	}
}

func (n *node) insert(r *route, segs []config.Segment) {
	for i, s := range segs {
		switch s.Kind {
		case config.CatchAll:
			n.catchAll = append(n.catchAll, r)
			return
		case config.Param:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		default:
			n = n.static(s.Value)
		}
		if i == len(segs)-1 {
			n.routes = append(n.routes, r)
		}
	}
}

func (n *node) static(label string) *node {
	for _, c := range n.statics {
		if c.label == label {
			return c
		}
	}
	c := &node{label: label}
	n.statics = append(n.statics, c)
	return c
}

// staticIndexMin is the number of static children from which a map beats
// a linear scan.
const staticIndexMin = 8

func (n *node) finish() {
	if len(n.statics) >= staticIndexMin {
		n.byLabel = make(map[string]*node, len(n.statics))
		for _, c := range n.statics {
			n.byLabel[c.label] = c
		}
	}
	sortRoutes(n.routes)
	sortRoutes(n.catchAll)
	for _, c := range n.statics {
		c.finish()
	}
	if n.param != nil {
		n.param.finish()
	}
}

// sortRoutes orders routes on one template: more conditions first, then
// method-restricted, then config order.
func sortRoutes(rs []*route) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if ca, cb := len(a.headers)+len(a.query), len(b.headers)+len(b.query); ca != cb {
			return ca > cb
		}
		if ma, mb := !a.methods.any(), !b.methods.any(); ma != mb {
			return ma
		}
		return a.index < b.index
	})
}

// match finds the route for x's request and fills x.params. It returns nil
// when none matches; x.allowed then holds the methods of routes whose path
// and conditions matched (405 when non-empty).
func (rt *router) match(x *exchange, host, path []byte) *route {
	if len(rt.exact) > 0 {
		if root := rt.exact[string(host)]; root != nil {
			if r := x.walkRoot(root, path); r != nil {
				return r
			}
		}
	}
	for i := range rt.wildcard {
		w := &rt.wildcard[i]
		if len(host) > len(w.suffix) && bytes.HasSuffix(host, w.suffix) {
			if r := x.walkRoot(w.root, path); r != nil {
				return r
			}
		}
	}
	if rt.anyHost != nil {
		return x.walkRoot(rt.anyHost, path)
	}
	return nil
}

func (x *exchange) walkRoot(root *node, path []byte) *route {
	x.nparams = 0
	if len(path) == 0 || path[0] != '/' {
		return nil
	}
	return x.walk(root, path, 1)
}

// walk matches the segment of path starting at i (just after a '/') against
// n's children, in priority order, backtracking on failure.
func (x *exchange) walk(n *node, path []byte, i int) *route {
	j := i + bytes.IndexByte(path[i:], '/')
	if j < i {
		j = len(path)
	}
	seg := path[i:j]
	if c := n.child(seg); c != nil {
		if r := x.descend(c, path, j); r != nil {
			return r
		}
	}
	if n.param != nil && len(seg) > 0 && x.nparams < maxParams {
		x.params[x.nparams] = span{i, j}
		x.nparams++
		if r := x.descend(n.param, path, j); r != nil {
			return r
		}
		x.nparams--
	}
	if len(n.catchAll) > 0 && x.nparams < maxParams {
		return x.catchAll(n, i, len(path))
	}
	return nil
}

// child returns the static child labelled seg, or nil.
func (n *node) child(seg []byte) *node {
	if n.byLabel != nil {
		return n.byLabel[string(seg)]
	}
	for _, c := range n.statics {
		if string(seg) == c.label {
			return c
		}
	}
	return nil
}

// descend continues below c, whose segment ended at j.
func (x *exchange) descend(c *node, path []byte, j int) *route {
	if j == len(path) {
		if r := x.pick(c.routes); r != nil {
			return r
		}
		// "/api" also matches "/api/{rest:*}", with an empty rest.
		if len(c.catchAll) > 0 && x.nparams < maxParams {
			return x.catchAll(c, j, j)
		}
		return nil
	}
	return x.walk(c, path, j+1)
}

func (x *exchange) catchAll(n *node, start, end int) *route {
	x.params[x.nparams] = span{start, end}
	x.nparams++
	if r := x.pick(n.catchAll); r != nil {
		return r
	}
	x.nparams--
	return nil
}

// preflightAllowed reports whether the request is a CORS preflight (OPTIONS
// with Origin and Access-Control-Request-Method) for a method r accepts.
func (x *exchange) preflightAllowed(r *route) bool {
	if x.method != methodOptions {
		return false
	}
	h := &x.ctx.Request.Header
	m := h.Peek("Access-Control-Request-Method")
	return len(m) > 0 && len(h.Peek("Origin")) > 0 && r.methods.has(methodBit(m), m)
}

// pick returns the first route of rs whose conditions hold for the request.
func (x *exchange) pick(rs []*route) *route {
	for _, r := range rs {
		if !r.conditionsHold(x.ctx) {
			continue
		}
		if r.methods.has(x.method, x.ctx.Method()) || r.preflight && x.preflightAllowed(r) {
			return r
		}
		x.allowed.union(&r.methods)
	}
	return nil
}
