// Package aggregate is the aggregate terminal: a route that fans one
// request out to several backends, each through an upstream with its
// balancing, retries, health, circuit breaker and metrics, and answers
// with their JSON responses merged into one object.
//
//	routes:
//	  - name: dashboard
//	    match: {path: "/api/dashboard/{id}"}
//	    aggregate:
//	      timeout: 800ms
//	      backends:
//	        - {upstream: users, path: "/users/{id}", group: user, required: true, deny: [password_hash]}
//	        - {upstream: orders, path: "/orders?user={id}", group: orders, collection: true, timeout: 300ms}
//	        - {upstream: users, path: "/users/{resp0.manager_id}", group: manager}
package aggregate

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-json"

	"fastgate/core"
	"fastgate/core/config"
)

// Builder is the core.TerminalBuilder of routes with aggregate. It holds
// no state and is safe for concurrent use.
type Builder struct{}

var _ core.TerminalBuilder = Builder{}

// Key returns the route's aggregate config, nil when it has none.
func (Builder) Key(_ *config.Config, rc *config.Route) any {
	if rc.Aggregate == nil {
		return nil
	}
	return rc.Aggregate
}

// Validate checks the backends' upstreams and path templates against the
// snapshot and the route's parameters.
func (Builder) Validate(e *core.Env) error {
	for i := range e.Route.Aggregate.Backends {
		if _, err := parseBackend(e, i); err != nil {
			return err
		}
	}
	return nil
}

// Build compiles the backends and starts nothing: workers start on demand
// and stop at Close.
func (Builder) Build(e *core.Env) (core.Terminal, error) {
	a := e.Route.Aggregate
	t := &Terminal{
		status:  a.Status,
		timeout: a.Timeout.D(),
		maxBody: a.MaxBody.Int(),
	}
	t.pool.init(int32(runtime.GOMAXPROCS(0) * 64))
	for i := range a.Backends {
		parts, err := parseBackend(e, i)
		if err != nil {
			t.Close()
			return nil, err
		}
		b, err := compileBackend(e, i, parts)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.backends = append(t.backends, b)
	}
	for i, b := range t.backends {
		t.hasRoot = t.hasRoot || b.root
		t.sorted = append(t.sorted, i)
	}
	slices.SortFunc(t.sorted, func(i, j int) int { return strings.Compare(t.backends[i].group, t.backends[j].group) })
	for i := range t.backends {
		for j := range t.backends {
			if t.backends[j].deps&(1<<uint(i)) != 0 {
				t.backends[i].decode = true // its fields are read
				t.backends[i].referenced = true
			}
		}
	}
	return t, nil
}

// parseBackend checks backend i's upstream and parses its path.
func parseBackend(e *core.Env, i int) ([]config.AggregatePart, error) {
	bc := &e.Route.Aggregate.Backends[i]
	if _, ok := e.Config.Upstreams[bc.Upstream]; !ok {
		return nil, fmt.Errorf("aggregate.backends[%d].upstream: unknown upstream %q", i, bc.Upstream)
	}
	parts, err := config.ParseAggregatePath(bc.Path, e.Params(), i)
	if err != nil {
		return nil, fmt.Errorf("aggregate.backends[%d].path: %w", i, err)
	}
	return parts, nil
}

// compileBackend builds backend i from its config and parsed path.
func compileBackend(e *core.Env, i int, parts []config.AggregatePart) (*backend, error) {
	a := e.Route.Aggregate
	bc := &a.Backends[i]
	up := e.Upstream(bc.Upstream)
	if up == nil {
		return nil, fmt.Errorf("aggregate.backends[%d].upstream: unknown upstream %q", i, bc.Upstream)
	}
	b := &backend{
		index:      i,
		up:         up,
		group:      bc.Group,
		root:       bc.Group == "",
		collection: bc.Collection,
		required:   bc.Required,
		timeout:    a.Timeout.D(),
	}
	if d := bc.Timeout.D(); d > 0 && d < b.timeout {
		b.timeout = d
	} else if uc := e.Config.Upstreams[bc.Upstream]; d == 0 && uc != nil && uc.Timeouts.Request > 0 && uc.Timeouts.Request.D() < b.timeout {
		b.timeout = uc.Timeouts.Request.D()
	}
	name := bc.Group
	if name == "" {
		name = "backends[" + strconv.Itoa(i) + "]"
	}
	b.label = []byte(name)
	b.key, _ = json.Marshal(bc.Group)
	b.key = append(b.key, ':')
	b.errPrefix = "aggregate: backend " + jsonSafe(name) + " (upstream " + jsonSafe(bc.Upstream) + "): "
	b.failures = e.Counter(`fastgate_aggregate_backend_failures_total{route=` + strconv.Quote(e.Route.Name) + `,backend=` + strconv.Quote(name) + `}`)
	for _, p := range parts {
		cp := part{literal: []byte(p.Literal), param: -1, ref: p.Ref, field: p.Field, query: p.Query}
		switch {
		case p.QueryArg != "":
			cp.queryArg = []byte(p.QueryArg)
		case p.Param != "":
			cp.param = e.ParamIndex(p.Param)
		case p.Ref >= 0:
			b.deps |= 1 << uint(p.Ref)
			cp.missing = "the field resp" + strconv.Itoa(p.Ref) + "." + jsonSafe(strings.Join(p.Field, ".")) +
				" its path refers to is missing, or not a string, number or boolean"
		}
		b.parts = append(b.parts, cp)
	}
	for _, h := range bc.Headers {
		b.headers = append(b.headers, []byte(h))
	}
	b.compileOps(bc)
	return b, nil
}

// compileOps splits the dotted paths of what the backend takes of its
// response, and the texts of its shape failures.
func (b *backend) compileOps(bc *config.AggregateBackend) {
	split := func(s string) []string { return strings.Split(s, ".") }
	if bc.Target != "" {
		b.target = split(bc.Target)
		b.noTarget = "the response has no field " + jsonSafe(bc.Target) + " (target)"
	}
	for _, f := range bc.Allow {
		b.allow = append(b.allow, split(f))
	}
	for _, f := range bc.Deny {
		b.deny = append(b.deny, split(f))
	}
	for _, k := range sortedKeys(bc.Rename) {
		b.rename = append(b.rename, rename{from: split(k), to: bc.Rename[k]})
	}
	b.decode = b.root || len(b.target) > 0 || len(b.allow) > 0 || len(b.deny) > 0 || len(b.rename) > 0
}

// jsonSafe returns s escaped for the inside of a JSON string (error texts
// are written as they are into error bodies).
func jsonSafe(s string) string {
	q, _ := json.Marshal(s)
	return string(q[1 : len(q)-1])
}

// Close stops the terminal's workers. It implements io.Closer: core calls
// it once no snapshot uses the terminal.
func (t *Terminal) Close() error {
	t.pool.stop()
	return nil
}

var _ io.Closer = (*Terminal)(nil)
