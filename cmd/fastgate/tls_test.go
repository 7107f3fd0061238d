package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// testCA is a self-signed CA that issues server certificates for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fastgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a server certificate for the DNS names with the given
// serial, and its key, as PEM files in dir; it returns their paths.
func (ca *testCA) issue(t *testing.T, dir, file string, serial int64, names ...string) (certPath, keyPath string) {
	t.Helper()
	return ca.issueLeaf(t, dir, file, serial, x509.ExtKeyUsageServerAuth, names...)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	// Write then rename: a reload never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// served returns the leaf certificate the gateway at addr serves for the
// SNI name sni, verified against the CA.
func served(t *testing.T, addr, sni string, pool *x509.CertPool) *x509.Certificate {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
		ServerName: sni, RootCAs: pool, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatalf("TLS handshake with SNI %q: %s", sni, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestTLS checks SNI selection, the TLS 1.2 minimum, X-Forwarded-Proto,
// the HTTP-to-HTTPS redirect, and that a certificate replaced on disk is
// served after a reload.
func TestTLS(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	aCert, aKey := ca.issue(t, dir, "a", 100, "a.example.test")
	bCert, bKey := ca.issue(t, dir, "b", 200, "b.example.test", "*.b.example.test")
	echo := startUpstream(t, "echo", "-echo")
	redirect := freePort(t)
	g := startGateway(t, `
tls:
  certs:
    - {cert: "`+aCert+`", key: "`+aKey+`"}
    - {cert: "`+bCert+`", key: "`+bKey+`"}
  redirect_listen: "`+redirect+`"
upstreams:
  echo: {targets: [{url: "{{echo}}"}]}
routes:
  - {name: echo, match: {path: "/{rest:*}"}, upstream: echo}
`, echo)

	f := func(sni string, serial int64) {
		t.Helper()
		if got := served(t, g.addr, sni, ca.pool).SerialNumber.Int64(); got != serial {
			t.Fatalf("SNI %q: served certificate serial %d; want %d", sni, got, serial)
		}
	}
	f("a.example.test", 100)
	f("b.example.test", 200)
	f("api.b.example.test", 200) // wildcard
	f("A.Example.TEST", 100)     // case-insensitive

	// TLS 1.1 is refused.
	if c, err := tls.Dial("tcp", g.addr, &tls.Config{ServerName: "a.example.test", RootCAs: ca.pool, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded; want the 1.2 minimum")
	}

	// A request over TLS reaches the upstream with X-Forwarded-Proto: https.
	client := &http.Client{Timeout: clientWait, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "a.example.test"}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + g.addr + "/hello")
	if err != nil {
		t.Fatalf("GET over TLS: %s", err)
	}
	r := readResponse(t, resp)
	e := mustEcho(t, r)
	if got := strings.Join(e.Values("X-Forwarded-Proto"), ","); got != "https" {
		t.Fatalf("X-Forwarded-Proto over TLS: got %q; want https", got)
	}
	// security_headers' default HSTS goes on TLS responses only.
	if got := r.header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Fatalf("Strict-Transport-Security over TLS: got %q; want the default", got)
	}

	// The redirect listener sends plain HTTP to https, keeping the path.
	plain := newClient()
	resp, err = plain.Get("http://" + redirect + "/a/b?c=d")
	if err != nil {
		t.Fatalf("GET on the redirect listener: %s", err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(g.addr)
	if want := "https://127.0.0.1:" + port + "/a/b?c=d"; resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Fatalf("redirect: %d %q; want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	// Replace b's certificate on disk, reload: the new one is served.
	ca.issue(t, dir, "b", 201, "b.example.test", "*.b.example.test")
	if r := g.admin(t, "POST", "/reload", ""); r.status != 200 {
		t.Fatalf("reload after the certificate change: %d %s", r.status, r.body)
	}
	f("b.example.test", 201)
	f("a.example.test", 100)

	// A broken certificate file is rejected and the old one keeps serving.
	if err := os.WriteFile(bCert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = g.admin(t, "POST", "/reload", "")
	if r.status != 400 || !strings.Contains(string(r.body), "tls.certs[1]") {
		t.Fatalf("reload with a broken certificate: %d %s; want 400 naming tls.certs[1]", r.status, r.body)
	}
	f("b.example.test", 201)
}

func readResponse(t *testing.T, resp *http.Response) *response {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: []byte(b.String())}
}
