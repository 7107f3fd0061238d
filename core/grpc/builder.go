// Package grpc is the grpc terminal: a route that transcodes an HTTP/JSON
// request into a gRPC unary call to an upstream of h2c targets, and the
// answer back into JSON (protojson over dynamic messages, from a .proto
// compiled when the config loads). An https:// target is called over TLS
// with the upstream's tls block (ALPN h2), an http:// one over h2c.
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
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"fastgate/core"
	"fastgate/core/config"
)

// Builder is the core.TerminalBuilder of routes with grpc. It keeps the
// client connections of every grpc terminal it built, one per target
// address and TLS config, shared by routes and snapshots: a connection is
// made on its first call and closed once no terminal uses it, or by Close.
// The zero value is ready; it is safe for concurrent use.
type Builder struct {
	mu    sync.Mutex
	conns map[connKey]*sharedConn
}

// connKey identifies a shared connection: the target's address and its
// TLS config (nil: h2c). A target whose TLS settings or files change gets
// a new config (core.Upstream.TargetTLS), hence a new connection.
type connKey struct {
	addr string
	tls  *tls.Config
}

// sharedConn is a client connection and the terminals that use it.
type sharedConn struct {
	cc   *grpc.ClientConn
	refs int
	// tls is the state of its TLS handshakes; nil for h2c.
	tls *tlsState
}

// tlsState keeps the last failed TLS handshake of a connection (nil once
// one succeeds), so a call that found no transport can answer why.
type tlsState struct {
	failed func(error) bool // core.Upstream.TargetTLSFailures: logs, says whether err is TLS's
	last   atomic.Pointer[error]
}

// report records err, a handshake's or a read's, when it is a failed
// handshake.
func (s *tlsState) report(err error) {
	if s.failed(err) {
		s.last.Store(&err)
	}
}

// lastFailure returns the failed handshake that left the connection
// without a transport, nil if none.
func (s *tlsState) lastFailure() error {
	if s == nil {
		return nil
	}
	if p := s.last.Load(); p != nil {
		return *p
	}
	return nil
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
		conns:       map[string]*sharedConn{},
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

// acquire returns the connection of k, made if needed, and takes a
// reference on it. A new TLS connection hands its errors to failed
// (core.Upstream.TargetTLSFailures), which logs the failed handshakes.
func (b *Builder) acquire(k connKey, failed func(error) bool) (*sharedConn, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sc := b.conns[k]; sc != nil {
		sc.refs++
		return sc, nil
	}
	creds := insecure.NewCredentials()
	var ts *tlsState
	if k.tls != nil {
		creds = credentials.NewTLS(k.tls) // it clones the config
		if failed != nil {
			ts = &tlsState{failed: failed}
			creds = reportingCreds{creds, ts}
		}
	}
	// passthrough: the address is dialled as it is (the upstream's
	// targets are resolved by the gateway, not by gRPC's DNS resolver).
	// gRPC's own retries are off: the upstream's retry policy decides.
	cc, err := grpc.NewClient("passthrough:///"+k.addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDisableRetry(),
	)
	if err != nil {
		return nil, fmt.Errorf("grpc: target %s: %w", k.addr, err)
	}
	if b.conns == nil {
		b.conns = map[connKey]*sharedConn{}
	}
	sc := &sharedConn{cc: cc, refs: 1, tls: ts}
	b.conns[k] = sc
	return sc, nil
}

// reportingCreds are TLS credentials that report the errors of their
// handshakes, and of the reads on their connections, to their tlsState:
// gRPC keeps a failed handshake's reason to itself (the call only fails
// UNAVAILABLE), and the gateway logs it and answers it as it does its own.
type reportingCreds struct {
	credentials.TransportCredentials
	s *tlsState
}

func (c reportingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		c.s.report(err)
		return nil, nil, err
	}
	c.s.last.Store(nil)
	return reportingConn{conn, c.s}, info, nil
}

func (c reportingCreds) Clone() credentials.TransportCredentials {
	return reportingCreds{c.TransportCredentials.Clone(), c.s}
}

// reportingConn reports its read errors: under TLS 1.3 a target that
// refuses the client certificate alerts after the client's handshake.
type reportingConn struct {
	net.Conn
	s *tlsState
}

func (c reportingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.s.report(err)
	}
	return n, err
}

// release drops a reference on k's connection, closing it with the last.
func (b *Builder) release(k connKey) {
	b.mu.Lock()
	sc := b.conns[k]
	if sc == nil {
		b.mu.Unlock()
		return
	}
	sc.refs--
	if sc.refs > 0 {
		b.mu.Unlock()
		return
	}
	delete(b.conns, k)
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
