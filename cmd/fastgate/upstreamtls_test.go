package main

// Upstream TLS through the binary: https:// targets are in-process TLS
// servers on loopback with certificates from a test CA that the gateway
// trusts through tls.ca_file.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"fastgate/cmd/upstream/stub"
)

// tlsPKI is a test CA written to caFile, a server certificate it signs for
// 127.0.0.1 and localhost, and a client certificate (CN fastgate-client)
// as PEM files.
type tlsPKI struct {
	caFile                string
	pool                  *x509.CertPool
	server                tls.Certificate
	clientCert, clientKey string
}

func newTLSPKI(t *testing.T) *tlsPKI {
	t.Helper()
	ca := newTestCA(t)
	dir := t.TempDir()
	p := &tlsPKI{caFile: filepath.Join(dir, "ca.pem"), pool: ca.pool}
	writePEM(t, p.caFile, "CERTIFICATE", ca.cert.Raw)
	certPath, keyPath := ca.issueLeaf(t, dir, "server", 10, x509.ExtKeyUsageServerAuth, "127.0.0.1", "localhost")
	var err error
	if p.server, err = tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	p.clientCert, p.clientKey = ca.issueLeaf(t, dir, "client", 11, x509.ExtKeyUsageClientAuth, "fastgate-client")
	return p
}

// issueLeaf is issue for any extended key usage, and names that may be IP
// addresses (IP SANs): a target written https://127.0.0.1:PORT is verified
// against the certificate's IP SANs.
func (ca *testCA) issueLeaf(t *testing.T, dir, file string, serial int64, usage x509.ExtKeyUsage, names ...string) (certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, file+".pem"), filepath.Join(dir, file+".key")
	writePEM(t, certPath, "CERTIFICATE", der)
	writePEM(t, keyPath, "EC PRIVATE KEY", kb)
	return certPath, keyPath
}

// serverConfig is the TLS config of a target serving p's server
// certificate; with mtls it requires a client certificate signed by p's
// CA.
func (p *tlsPKI) serverConfig(mtls bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mtls {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
	}
	return cfg
}

// listenLoopback listens on a free loopback port.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on a free port: %s", err)
	}
	return ln
}

// listenTLS listens on a free loopback port and serves TLS with cfg.
func listenTLS(t *testing.T, cfg *tls.Config) net.Listener {
	t.Helper()
	return tls.NewListener(listenLoopback(t), cfg)
}

// serveStubTLS serves a stub (echo and WebSocket echo, named name) over
// TLS with cfg on a loopback port until the test ends, and returns its
// address. Its responses carry the CN of the client certificate the
// gateway presented in X-Client-CN.
func serveStubTLS(t *testing.T, name string, cfg *tls.Config) string {
	t.Helper()
	ln := listenTLS(t, cfg)
	s := stub.New(stub.Options{Name: name, Echo: true})
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if st := ctx.TLSConnectionState(); st != nil && len(st.PeerCertificates) > 0 {
				ctx.Response.Header.Set("X-Client-CN", st.PeerCertificates[0].Subject.CommonName)
			}
			s.Handler(ctx)
		},
		CloseOnShutdown: true,
		Logger:          quietLog{},
	}
	go srv.Serve(ln) //nolint:errcheck // ends with the shutdown
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		srv.ShutdownWithContext(ctx) //nolint:errcheck // a test server
	})
	return ln.Addr().String()
}

// quietLog drops fasthttp's log of the handshakes the tests fail on
// purpose.
type quietLog struct{}

func (quietLog) Printf(string, ...any) {}

// relayTLS terminates TLS (ALPN h2) on a loopback port and relays each
// connection's bytes to the plain-TCP backend, until the test ends; it
// returns its address. It puts TLS in front of a gRPC server that speaks
// h2c only.
func relayTLS(t *testing.T, cfg *tls.Config, backend string) string {
	t.Helper()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	ln := listenTLS(t, cfg)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(c, backend)
			}()
		}
	}()
	return ln.Addr().String()
}

// relay copies bytes between c and a new connection to backend until
// either side closes.
func relay(c net.Conn, backend string) {
	defer c.Close()
	b, err := net.DialTimeout("tcp4", backend, time.Second)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(b, c) //nolint:errcheck // ends with either side
		b.Close()
		close(done)
	}()
	io.Copy(c, b) //nolint:errcheck // ends with either side
	c.Close()
	<-done
}

// waitLogged waits until g's log has each of wants: the log reaches the
// test through a pipe, after the response the logged failure caused.
func waitLogged(t *testing.T, g *gateway, wants ...string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fastgate log:\n%s", g.stderr.String())
		}
	})
	waitFor(t, fmt.Sprintf("fastgate log with %q", wants), clientWait, func() bool {
		logged := g.stderr.String()
		for _, want := range wants {
			if !strings.Contains(logged, want) {
				return false
			}
		}
		return true
	})
}

// TestUpstreamTLSBinary: an https://127.0.0.1 target verified with
// tls.ca_file (its IP SAN) answers through the binary; a wrong CA and a
// missing client certificate are 502s that say why; a client certificate
// from cert_file/key_file passes mutual TLS; -check names a ca_file that
// does not exist.
func TestUpstreamTLSBinary(t *testing.T) {
	p := newTLSPKI(t)
	other := newTLSPKI(t) // its CA did not sign p's server certificate
	addr := serveStubTLS(t, "tls-echo", p.serverConfig(false))
	mtlsAddr := serveStubTLS(t, "mtls-echo", p.serverConfig(true))
	ca := `ca_file: "` + p.caFile + `"`
	g := startGateway(t, `
upstreams:
  secure:  {targets: [{url: "https://`+addr+`"}], tls: {`+ca+`}}
  wrongca: {targets: [{url: "https://`+addr+`"}], tls: {ca_file: "`+other.caFile+`"}}
  mtls:    {targets: [{url: "https://`+mtlsAddr+`"}], tls: {`+ca+`, cert_file: "`+p.clientCert+`", key_file: "`+p.clientKey+`"}}
  nocert:  {targets: [{url: "https://`+mtlsAddr+`"}], tls: {`+ca+`}}
routes:
  - {name: secure, match: {path: "/secure/{rest:*}"}, upstream: secure}
  - {name: wrongca, match: {path: "/wrongca/{rest:*}"}, upstream: wrongca}
  - {name: mtls, match: {path: "/mtls/{rest:*}"}, upstream: mtls}
  - {name: nocert, match: {path: "/nocert/{rest:*}"}, upstream: nocert}
`)

	// Several requests: the first dials and handshakes, the others may
	// reuse the pooled TLS connection.
	for i := 0; i < 3; i++ {
		r := g.get(t, "/secure/a?b=c")
		e := mustEcho(t, r)
		if e.Name != "tls-echo" || e.URI != "/secure/a?b=c" || e.Host != addr {
			t.Fatalf("GET /secure/a?b=c, request %d: upstream got name %q, URI %q, Host %q; want tls-echo, /secure/a?b=c, %s", i, e.Name, e.URI, e.Host, addr)
		}
		if cn := r.header.Get("X-Client-CN"); cn != "" {
			t.Fatalf("GET /secure/a: the target saw client certificate %q; want none (no cert_file)", cn)
		}
	}

	r := g.get(t, "/wrongca/a")
	checkGatewayError(t, "GET /wrongca/a (ca_file of another CA)", r, 502)
	if !strings.Contains(string(r.body), "certificate verification failed") {
		t.Fatalf("GET /wrongca/a: body %s; want it to name the certificate verification", r.body)
	}

	r = g.get(t, "/mtls/a")
	if e := mustEcho(t, r); e.Name != "mtls-echo" {
		t.Fatalf("GET /mtls/a: upstream name %q; want mtls-echo", e.Name)
	}
	if cn := r.header.Get("X-Client-CN"); cn != "fastgate-client" {
		t.Fatalf("GET /mtls/a: the target saw client certificate %q; want fastgate-client (cert_file)", cn)
	}

	r = g.get(t, "/nocert/a")
	checkGatewayError(t, "GET /nocert/a (mutual TLS without cert_file)", r, 502)
	if !strings.Contains(string(r.body), "upstream TLS handshake failed") {
		t.Fatalf("GET /nocert/a: body %s; want it to name the TLS handshake", r.body)
	}

	// The 502s point at the log, which must say why.
	waitLogged(t, g, "upstream TLS handshake failed", "upstream=wrongca", "certificate signed by unknown authority", "upstream=nocert", "certificate required")

	missing := filepath.Join(t.TempDir(), "missing-ca.pem")
	stderr := checkRejects(t, `
listen: "127.0.0.1:0"
upstreams:
  secure: {targets: [{url: "https://`+addr+`"}], tls: {ca_file: "`+missing+`"}}
routes:
  - {match: {path: /a}, upstream: secure}
`)
	wantProblem(t, stderr, "upstreams.secure.tls.ca_file", missing+`" does not exist`)
}

// TestGRPCPassthroughTLS: a gRPC client talking h2c to the binary reaches
// a grpc-go server that serves TLS (ALPN h2) through a route with
// protocol: grpc: a unary call, and a failed call's status and message
// through the trailers. An upstream with the wrong CA fails the call as
// Unavailable.
func TestGRPCPassthroughTLS(t *testing.T) {
	p := newTLSPKI(t)
	other := newTLSPKI(t)
	ln := listenLoopback(t) // grpc.Creds does the TLS
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(p.serverConfig(false))))
	hs := health.NewServer()
	hs.SetServingStatus("inventory", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln) //nolint:errcheck // ends with Stop
	t.Cleanup(srv.Stop)

	target := "https://" + ln.Addr().String()
	g := startGateway(t, `
server: {h2c: true}
upstreams:
  grpc:    {targets: [{url: "`+target+`"}], tls: {ca_file: "`+p.caFile+`"}}
  wrongca: {targets: [{url: "`+target+`"}], tls: {ca_file: "`+other.caFile+`"}}
routes:
  - {name: wrongca, match: {hosts: [wrongca.test], path: "/grpc.health.v1.Health/{m}"}, upstream: wrongca, protocol: grpc, timeout: 10s}
  - {name: health, match: {path: "/grpc.health.v1.Health/{m}"}, upstream: grpc, protocol: grpc, timeout: 10s}
`)
	call := func(authority, service string) (*healthpb.HealthCheckResponse, error) {
		t.Helper()
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if authority != "" {
			opts = append(opts, grpc.WithAuthority(authority))
		}
		conn, err := grpc.NewClient(g.addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), clientWait)
		defer cancel()
		return healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	}
	if r, err := call("", "inventory"); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check over TLS: %v, %v; want SERVING; fastgate stderr:\n%s", r, err, g.stderr.String())
	}
	_, err := call("", "nope")
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "unknown service" {
		t.Fatalf("Check of an unknown service over TLS: %v; want NotFound %q (grpc-status and grpc-message in the trailers)", err, "unknown service")
	}
	_, err = call("wrongca.test", "inventory")
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "certificate verification failed") {
		t.Fatalf("Check through an upstream with the wrong CA: %v; want Unavailable naming the certificate verification", err)
	}
}

// TestGRPCTranscodeTLS: the grpc terminal calls the demo inventory service
// at an https:// target over TLS (a TLS relay in front of its h2c
// server): an HTTP/JSON request gets the JSON answer, and a gRPC NOT_FOUND
// is a 404 JSON error. An upstream with the wrong CA is a 502 whose
// reason the gateway logs.
func TestGRPCTranscodeTLS(t *testing.T) {
	p := newTLSPKI(t)
	other := newTLSPKI(t)
	stop, backend, err := stub.StartGRPCInventory("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	addr := relayTLS(t, p.serverConfig(false), backend)
	proto := inventoryProto(t)
	g := startGateway(t, `
upstreams:
  inventory: {targets: [{url: "https://`+addr+`"}], tls: {ca_file: "`+p.caFile+`"}}
  wrongca:   {targets: [{url: "https://`+addr+`"}], tls: {ca_file: "`+other.caFile+`"}}
routes:
  - name: stock
    match: {path: "/api/stock/{sku}", methods: [GET]}
    grpc: {upstream: inventory, proto: "`+proto+`", method: inventory.v1.Inventory/GetStock, timeout: 5s}
  - name: wrongca
    match: {path: "/wrongca/stock/{sku}", methods: [GET]}
    grpc: {upstream: wrongca, proto: "`+proto+`", method: inventory.v1.Inventory/GetStock, timeout: 5s}
`)
	f := func(path string, status int, want map[string]any) {
		t.Helper()
		r := g.get(t, path, "X-Request-ID: rid-tls")
		if r.status != status {
			t.Fatalf("GET %s: status got %d; want %d; body %s; fastgate stderr:\n%s", path, r.status, status, r.body, g.stderr.String())
		}
		var got map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("GET %s: body %s: %s", path, r.body, err)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("GET %s: body %s: %q got %v; want %v", path, r.body, k, got[k], v)
			}
		}
	}
	f("/api/stock/sku-1002", 200, map[string]any{"sku": "sku-1002", "name": "Ultrawide monitor", "available": float64(10), "warehouse": "all"})
	f("/api/stock/sku-9999", 404, map[string]any{"code": "NOT_FOUND", "status": float64(404), "error": `no stock record for SKU "sku-9999"`, "request_id": "rid-tls"})

	r := g.get(t, "/wrongca/stock/sku-1002")
	checkGatewayError(t, "GET /wrongca/stock/sku-1002 (ca_file of another CA)", r, 502)
	if !strings.Contains(string(r.body), "certificate verification failed") {
		t.Fatalf("GET /wrongca/stock/sku-1002: body %s; want it to name the certificate verification", r.body)
	}
	waitLogged(t, g, "upstream TLS handshake failed", "upstream=wrongca", "certificate signed by unknown authority")
}

// TestWebSocketTLS: a WebSocket route to an https:// target reaches the
// stub's WebSocket echo over TLS (wss between the gateway and the target).
func TestWebSocketTLS(t *testing.T) {
	p := newTLSPKI(t)
	addr := serveStubTLS(t, "wss-echo", p.serverConfig(false))
	g := startGateway(t, `
upstreams:
  echo: {targets: [{url: "https://`+addr+`"}], tls: {ca_file: "`+p.caFile+`"}}
  wrongca: {targets: [{url: "https://`+addr+`"}], tls: {ca_file: "`+newTLSPKI(t).caFile+`"}}
routes:
  - {name: ws, match: {path: "/ws/{rest:*}"}, upstream: echo, websocket: {}}
  - {name: wrongca, match: {path: "/wrongca/{rest:*}"}, upstream: wrongca, websocket: {}}
`)
	// An upgrade to a target whose certificate does not verify: a 502
	// that says why, as for a plain request.
	r := g.get(t, "/wrongca/echo", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
	checkGatewayError(t, "WebSocket upgrade through an upstream with the wrong CA", r, 502)
	if !strings.Contains(string(r.body), "certificate verification failed") {
		t.Fatalf("WebSocket upgrade through an upstream with the wrong CA: body %s; want it to name the certificate verification", r.body)
	}
	ws, err := stub.DialWS(g.addr, "/ws/echo", clientWait)
	if err != nil {
		t.Fatalf("WebSocket through the gateway: %s; fastgate stderr:\n%s", err, g.stderr.String())
	}
	defer ws.Close()
	if !strings.Contains(ws.Header, "X-Stub-Name: wss-echo") {
		t.Fatalf("101 response head:\n%s\nwant X-Stub-Name: wss-echo", ws.Header)
	}
	for _, msg := range []string{"hello over wss", strings.Repeat("x", 70000)} {
		if err := ws.Send(stub.WSText, []byte(msg)); err != nil {
			t.Fatalf("send: %s", err)
		}
		op, got, err := ws.Receive(clientWait)
		if err != nil || op != stub.WSText || string(got) != msg {
			t.Fatalf("echo of a %d-byte message: op %d, %d bytes, %v; want the message back", len(msg), op, len(got), err)
		}
	}
}
