package core

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// testPKI is a CA, a server certificate it signs for 127.0.0.1 and
// localhost, and a client certificate, as PEM files and parsed.
type testPKI struct {
	caFile, clientCert, clientKey string
	pool                          *x509.CertPool
	server                        tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fastgate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	srvCert, srvKey := leaf(2, "upstream", x509.ExtKeyUsageServerAuth)
	if p.server, err = tls.X509KeyPair(srvCert, srvKey); err != nil {
		t.Fatal(err)
	}
	cliCert, cliKey := leaf(3, "fastgate-client", x509.ExtKeyUsageClientAuth)
	p.clientCert, p.clientKey = write("client.pem", cliCert), write("client.key", cliKey)
	return p
}

// tlsUpstream is a fasthttp server on a loopback TLS listener.
type tlsUpstream struct {
	addr  string
	conns atomic.Int64 // TLS connections accepted
	sick  atomic.Bool  // /healthz answers 503
}

// startTLSUpstream serves on 127.0.0.1 with p's server certificate; with
// mtls it requires a client certificate signed by p's CA. It answers with
// the Host it got (X-Got-Host), the client certificate's CN
// (X-Client-CN) and "ok".
func startTLSUpstream(t testing.TB, p *testPKI, mtls bool) *tlsUpstream {
	t.Helper()
	u := &tlsUpstream{}
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mtls {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	srv := &fasthttp.Server{
		Logger: quiet{},
		Handler: func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/healthz" && u.sick.Load() {
				ctx.SetStatusCode(503)
				return
			}
			ctx.Response.Header.SetBytesV("X-Got-Host", ctx.Host())
			if st := ctx.TLSConnectionState(); st != nil && len(st.PeerCertificates) > 0 {
				ctx.Response.Header.Set("X-Client-CN", st.PeerCertificates[0].Subject.CommonName)
			}
			ctx.WriteString("ok") //nolint:errcheck
		},
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				u.conns.Add(1)
			}
		},
	}
	go srv.Serve(tls.NewListener(ln, cfg)) //nolint:errcheck
	t.Cleanup(func() { srv.Shutdown() })   //nolint:errcheck
	return u
}

// tcpOnly makes the harness dial real sockets.
func tcpOnly(o *Options) { o.Dial = nil }

func tlsConfigYAML(target, tlsBlock string) string {
	s := "upstreams:\n  u:\n    targets: [{url: \"" + target + "\"}]\n    retries: {attempts: 1}\n"
	if tlsBlock != "" {
		s += "    tls: " + tlsBlock + "\n"
	}
	return s + "routes: [{upstream: u}]\n"
}

// TestUpstreamTLSProxy: requests to an https target verified with ca_file
// get its answer over one reused TLS connection, with the target's
// host:port as Host.
func TestUpstreamTLSProxy(t *testing.T) {
	p := newTestPKI(t)
	up := startTLSUpstream(t, p, false)
	h := newHarness(t, tlsConfigYAML("https://"+up.addr, `{ca_file: "`+p.caFile+`"}`), nil, tcpOnly)
	for i := 0; i < 5; i++ {
		resp := h.get("http://gw.local/x")
		if resp.StatusCode() != 200 || string(resp.Body()) != "ok" {
			t.Fatalf("request %d: got %d %q; want 200 ok", i, resp.StatusCode(), resp.Body())
		}
		if got := string(resp.Header.Peek("X-Got-Host")); got != up.addr {
			t.Fatalf("Host at the target: got %q; want %q", got, up.addr)
		}
		fasthttp.ReleaseResponse(resp)
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("TLS connections for 5 sequential requests: got %d; want 1 (keep-alive)", n)
	}
}

// TestUpstreamTLSVerify: the target's certificate must chain to ca_file
// (or the system roots) and be valid for server_name (default: the
// target's host, here an IP SAN); else 502 and one log line a minute.
func TestUpstreamTLSVerify(t *testing.T) {
	p := newTestPKI(t)
	up := startTLSUpstream(t, p, false)
	other := newTestPKI(t)
	f := func(target, block string, want int, wantErr string) {
		t.Helper()
		h := newHarness(t, tlsConfigYAML(target, block), nil, tcpOnly)
		resp := h.get("http://gw.local/x")
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != want || !bytes.Contains(resp.Body(), []byte(wantErr)) {
			t.Fatalf("%s with tls %s: got %d %s; want %d %q", target, block, resp.StatusCode(), resp.Body(), want, wantErr)
		}
	}
	ca := `ca_file: "` + p.caFile + `"`
	port := up.addr[strings.LastIndexByte(up.addr, ':'):]
	f("https://"+up.addr, "", 502, "upstream TLS certificate verification failed")
	f("https://"+up.addr, `{ca_file: "`+other.caFile+`"}`, 502, "upstream TLS certificate verification failed")
	f("https://"+up.addr, `{`+ca+`, server_name: api.example.com}`, 502, "upstream TLS certificate verification failed")
	f("https://"+up.addr, `{`+ca+`, server_name: localhost}`, 200, "ok")
	f("https://localhost"+port, `{`+ca+`}`, 200, "ok")
	f("https://"+up.addr, `{insecure_skip_verify: true}`, 200, "ok")
	f("https://"+up.addr, `{`+ca+`, min_version: "1.3"}`, 200, "ok")
	// A plain-HTTP server on an https target.
	plain := startPlainUpstream(t)
	f("https://"+plain, `{`+ca+`}`, 502, "upstream TLS handshake failed")
}

func startPlainUpstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Logger: quiet{}, Handler: func(ctx *fasthttp.RequestCtx) { ctx.WriteString("plain") }} //nolint:errcheck
	go srv.Serve(ln)                                                                                               //nolint:errcheck
	t.Cleanup(func() { srv.Shutdown() })                                                                           //nolint:errcheck
	return ln.Addr().String()
}

// countingHandler counts the log records whose message is msg.
type countingHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestUpstreamTLSFailureLog: a target failing every handshake is logged
// once per minute, not per request; insecure_skip_verify warns at load.
func TestUpstreamTLSFailureLog(t *testing.T) {
	p := newTestPKI(t)
	up := startTLSUpstream(t, p, false)
	var fails, insecure atomic.Int64
	log := slog.New(multiHandler{
		countingHandler{"upstream TLS handshake failed", &fails},
		countingHandler{"upstream TLS certificates are not verified (tls.insecure_skip_verify): anyone on the path can read and change its traffic; use tls.ca_file instead", &insecure},
	})
	withLog := func(o *Options) { o.Logger = log }
	h := newHarness(t, tlsConfigYAML("https://"+up.addr, ""), nil, tcpOnly, withLog)
	for i := 0; i < 5; i++ {
		h.expectStatus("/x", 502)
	}
	if n := fails.Load(); n != 1 {
		t.Fatalf("logged handshake failures after 5 failed requests: got %d; want 1", n)
	}
	newHarness(t, tlsConfigYAML("https://"+up.addr, "{insecure_skip_verify: true}"), nil, tcpOnly, withLog)
	if n := insecure.Load(); n != 1 {
		t.Fatalf("insecure_skip_verify warnings at load: got %d; want 1", n)
	}
}

type multiHandler []slog.Handler

func (m multiHandler) Enabled(context.Context, slog.Level) bool { return true }
func (m multiHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range m {
		h.Handle(ctx, r) //nolint:errcheck
	}
	return nil
}
func (m multiHandler) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m multiHandler) WithGroup(string) slog.Handler      { return m }

// TestUpstreamTLSClientCert: a target that requires a client certificate
// refuses the gateway without cert_file (502) and sees its certificate
// with it.
func TestUpstreamTLSClientCert(t *testing.T) {
	p := newTestPKI(t)
	up := startTLSUpstream(t, p, true)
	ca := `ca_file: "` + p.caFile + `"`
	h := newHarness(t, tlsConfigYAML("https://"+up.addr, "{"+ca+"}"), nil, tcpOnly)
	body := h.expectStatus("/x", 502)
	if !bytes.Contains(body, []byte("upstream TLS handshake failed")) {
		t.Fatalf("without a client certificate: got %s; want the handshake error", body)
	}
	h = newHarness(t, tlsConfigYAML("https://"+up.addr, `{`+ca+`, cert_file: "`+p.clientCert+`", key_file: "`+p.clientKey+`"}`), nil, tcpOnly)
	resp := h.get("http://gw.local/x")
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 || string(resp.Header.Peek("X-Client-CN")) != "fastgate-client" {
		t.Fatalf("with cert_file: got %d, client CN %q; want 200, fastgate-client", resp.StatusCode(), resp.Header.Peek("X-Client-CN"))
	}
}

// TestUpstreamTLSHealth: active checks probe an https target over TLS and
// mark it down and up.
func TestUpstreamTLSHealth(t *testing.T) {
	p := newTestPKI(t)
	up := startTLSUpstream(t, p, false)
	up.sick.Store(true)
	cfg := "upstreams:\n  u:\n    targets: [{url: \"https://" + up.addr + "\"}]\n" +
		"    tls: {ca_file: \"" + p.caFile + "\"}\n" +
		"    health: {active: {path: /healthz, interval: 20ms, timeout: 1s, healthy: 1, unhealthy: 1}}\n" +
		"routes: [{upstream: u}]\n"
	h := newHarness(t, cfg, nil, tcpOnly)
	waitFor(t, "the https target marked down", func() bool { return !h.gw.Upstreams()[0].Targets[0].Healthy })
	up.sick.Store(false)
	waitFor(t, "the https target healthy again", func() bool { return h.gw.Upstreams()[0].Targets[0].Healthy })
	h.expectStatus("/x", 200)
}

// TestUpstreamTLSReload: a reload keeps an https target's pool while its
// TLS settings and files are unchanged, and builds a new one when the CA
// file's content changes under the same name.
func TestUpstreamTLSReload(t *testing.T) {
	p := newTestPKI(t)
	m := newMetrics(func() float64 { return 0 })
	u := mustConfig(t, tlsConfigYAML("https://127.0.0.1:8443", `{ca_file: "`+p.caFile+`"}`)).Upstreams["u"]
	first, err := compileUpstream("u", u, nil, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(first.targets[0].host); got != "127.0.0.1:8443" {
		t.Fatalf("host: got %q; want 127.0.0.1:8443", got)
	}
	same, err := compileUpstream("u", u, nil, first, m)
	if err != nil {
		t.Fatal(err)
	}
	if same.targets[0] != first.targets[0] {
		t.Fatalf("reload with unchanged TLS: got a new target; want the same pool")
	}
	data, err := os.ReadFile(newTestPKI(t).caFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.caFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err := compileUpstream("u", u, nil, same, m)
	if err != nil {
		t.Fatal(err)
	}
	if changed.targets[0] == same.targets[0] || changed.targets[0].lb != same.targets[0].lb {
		t.Fatalf("reload with a changed CA file: got the same pool %v or new balancing state; want a new pool, the same lb state", changed.targets[0] == same.targets[0])
	}
	os.Remove(p.caFile) //nolint:errcheck
	if _, err := compileUpstream("u", u, nil, changed, m); err == nil || !strings.HasPrefix(err.Error(), `tls.ca_file: "`+p.caFile+`" does not exist`) {
		t.Fatalf("compile with the CA file gone: got %v; want the tls.ca_file problem", err)
	}
}

// TestUpstreamTLSHost: the Host of rewrite.host target drops the default
// port of the scheme.
func TestUpstreamTLSHost(t *testing.T) {
	f := func(url, want string) {
		t.Helper()
		u := mustConfig(t, tlsConfigYAML(url, "")).Upstreams["u"]
		up, err := compileUpstream("u", u, nil, nil, newMetrics(func() float64 { return 0 }))
		if err != nil {
			t.Fatal(err)
		}
		tg := up.targets[0]
		if got := string(tg.host); got != want {
			t.Fatalf("%s: host got %q; want %q", url, got, want)
		}
		if got := tg.tls != nil; got != strings.HasPrefix(url, "https") || tg.hc.IsTLS != got {
			t.Fatalf("%s: TLS got %v (pool %v)", url, got, tg.hc.IsTLS)
		}
	}
	f("https://api.internal", "api.internal")
	f("https://api.internal:443", "api.internal")
	f("https://api.internal:8443", "api.internal:8443")
	f("http://api.internal", "api.internal")
	f("http://api.internal:443", "api.internal:443")
}

// TestUpstreamTLSMixed: one upstream may have http and https targets.
func TestUpstreamTLSMixed(t *testing.T) {
	p := newTestPKI(t)
	up := startTLSUpstream(t, p, false)
	plain := startPlainUpstream(t)
	cfg := "upstreams:\n  u:\n    targets: [{url: \"https://" + up.addr + "\"}, {url: \"http://" + plain + "\"}]\n" +
		"    tls: {ca_file: \"" + p.caFile + "\"}\nroutes: [{upstream: u}]\n"
	h := newHarness(t, cfg, nil, tcpOnly)
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		seen[string(h.expectStatus("/x", 200))] = true
	}
	if !seen["ok"] || !seen["plain"] {
		t.Fatalf("round robin over an https and an http target: got bodies %v; want both", seen)
	}
}

// newUpstreamHarness runs a gateway whose one upstream is handler on a
// real loopback listener, https:// (verified with a test CA) when tlsOn,
// else http://; clients reach the gateway in memory.
func newUpstreamHarness(t testing.TB, handler fasthttp.RequestHandler, tlsOn bool) *tcpHarness {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target, block := "http://"+ln.Addr().String(), ""
	if tlsOn {
		p := newTestPKI(t)
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{p.server}})
		target, block = "https://"+ln.Addr().String(), `, tls: {ca_file: "`+p.caFile+`"}`
	}
	up := &fasthttp.Server{Handler: handler, Logger: quiet{}}
	go up.Serve(ln)                     //nolint:errcheck
	t.Cleanup(func() { up.Shutdown() }) //nolint:errcheck
	cfg := mustConfig(t, `
upstreams:
  u: {targets: [{url: "`+target+`"}], timeouts: {per_try: 1s}, retries: {attempts: 1}`+block+`}
routes: [{upstream: u}]
`)
	gw, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := &tcpHarness{gw: gw}
	gln := fasthttputil.NewInmemoryListener()
	go gw.Serve(gln) //nolint:errcheck
	t.Cleanup(func() { gln.Close(); shutdown(gw) })
	h.client = &fasthttp.Client{Dial: func(string) (net.Conn, error) { return gln.Dial() }, ReadTimeout: 5 * time.Second}
	return h
}
