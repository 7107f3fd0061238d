// Package grpc is the grpc terminal: a route that transcodes an HTTP/JSON
// request into a gRPC unary call to an upstream of h2c targets, and the
// answer back into JSON (protojson over dynamic messages, from a .proto
// compiled when the config loads).
//
//	routes:
//	  - name: stock
//	    match: {path: "/api/stock/{sku}", methods: [GET]}
//	    grpc:
//	      upstream: inventory
//	      proto: examples/inventory.proto
//	      method: inventory.v1.Inventory/GetStock
package grpc

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"fastgate/core"
	"fastgate/core/config"
)

// Builder is the core.TerminalBuilder of routes with grpc. It keeps the
// client connections of every grpc terminal it built, one per target
// address, shared by routes and snapshots: a connection is made on its
// first call and closed once no terminal uses its address, or by Close.
// The zero value is ready; it is safe for concurrent use.
type Builder struct {
	mu    sync.Mutex
	conns map[string]*sharedConn
}

// sharedConn is a client connection and the terminals that use it.
type sharedConn struct {
	cc   *grpc.ClientConn
	refs int
}

var _ core.TerminalBuilder = (*Builder)(nil)

// Key returns the route's grpc config, nil when it has none.
func (*Builder) Key(_ *config.Config, rc *config.Route) any {
	if rc.GRPC == nil {
		return nil
	}
	return rc.GRPC
}

// Validate compiles the proto (or reads the descriptor set) and checks
// the method or service and the path parameters against it. It reads
// files and starts nothing.
func (*Builder) Validate(e *core.Env) error {
	g := e.Route.GRPC
	if _, ok := e.Config.Upstreams[g.Upstream]; !ok {
		return fmt.Errorf("grpc.upstream: unknown upstream %q", g.Upstream)
	}
	_, err := resolve(g, e.Params())
	return err
}

// Build compiles the route's terminal; it dials nothing (connections are
// made on first use).
func (b *Builder) Build(e *core.Env) (core.Terminal, error) {
	g := e.Route.GRPC
	up := e.Upstream(g.Upstream)
	if up == nil {
		return nil, fmt.Errorf("grpc.upstream: unknown upstream %q", g.Upstream)
	}
	s, err := resolve(g, e.Params())
	if err != nil {
		return nil, err
	}
	t := &Terminal{
		b:           b,
		up:          up,
		spec:        s,
		stripPrefix: g.StripPrefix,
		service:     g.Service,
		timeout:     g.Timeout.D(),
		conns:       map[string]*grpc.ClientConn{},
	}
	if t.timeout == 0 {
		if uc := e.Config.Upstreams[g.Upstream]; uc != nil {
			t.timeout = uc.Timeouts.Request.D()
		}
	}
	for _, p := range s.params {
		t.paramIdx = append(t.paramIdx, e.ParamIndex(p.name))
	}
	for _, h := range g.Metadata {
		t.reqMD = append(t.reqMD, mdHeader{header: h, key: strings.ToLower(h)})
	}
	for _, h := range g.ResponseMetadata {
		t.respMD = append(t.respMD, mdHeader{header: h, key: strings.ToLower(h)})
	}
	route := strconv.Quote(e.Route.Name)
	for c := range numCodes {
		t.requests[c] = e.Counter(`fastgate_grpc_requests_total{route=` + route + `,code="` + codeNames[c] + `"}`)
	}
	return t, nil
}

// acquire returns the connection to addr, made if needed, and takes a
// reference on it.
func (b *Builder) acquire(addr string) (*grpc.ClientConn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sc := b.conns[addr]; sc != nil {
		sc.refs++
		return sc.cc, nil
	}
	// passthrough: the address is dialled as it is (the upstream's
	// targets are resolved by the gateway, not by gRPC's DNS resolver).
	// gRPC's own retries are off: the upstream's retry policy decides.
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDisableRetry(),
	)
	if err != nil {
		return nil, fmt.Errorf("grpc: target %s: %w", addr, err)
	}
	if b.conns == nil {
		b.conns = map[string]*sharedConn{}
	}
	b.conns[addr] = &sharedConn{cc: cc, refs: 1}
	return cc, nil
}

// release drops a reference on addr's connection, closing it with the
// last.
func (b *Builder) release(addr string) {
	b.mu.Lock()
	sc := b.conns[addr]
	if sc == nil {
		b.mu.Unlock()
		return
	}
	sc.refs--
	if sc.refs > 0 {
		b.mu.Unlock()
		return
	}
	delete(b.conns, addr)
	b.mu.Unlock()
	sc.cc.Close() //nolint:errcheck // closing an idle client connection
}

// Close closes every connection; terminals still running fail their
// calls. Call it after the gateway has shut down.
func (b *Builder) Close() error {
	b.mu.Lock()
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	for _, sc := range conns {
		sc.cc.Close() //nolint:errcheck // shutting down
	}
	return nil
}
