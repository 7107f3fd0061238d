package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTargetAddrTLS(t *testing.T) {
	f := func(url, wantAddr string, wantTLS bool) {
		t.Helper()
		tg := Target{URL: url}
		addr, err := tg.Addr()
		if err != nil {
			t.Fatalf("Addr(%q): %s", url, err)
		}
		if addr != wantAddr {
			t.Fatalf("Addr(%q): got %q; want %q", url, addr, wantAddr)
		}
		if got := tg.TLS(); got != wantTLS {
			t.Fatalf("TLS(%q): got %v; want %v", url, got, wantTLS)
		}
	}
	f("https://api.internal", "api.internal:443", true)
	f("https://API.internal/", "api.internal:443", true)
	f("HTTPS://10.0.0.1:8443", "10.0.0.1:8443", true)
	f("https://[::1]", "[::1]:443", true)
	f("http://api.internal", "api.internal:80", false)
	f("http://api.internal:443", "api.internal:443", false)
}

// writePEM writes a CA, a leaf it signs and a PEM key into dir, and returns
// their paths.
func writePEM(t *testing.T) (ca, cert, key, otherKey string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caTmpl, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("client.pem", "CERTIFICATE", leafDER),
		write("client.key", "EC PRIVATE KEY", keyDER(leafKey)), write("other.key", "EC PRIVATE KEY", keyDER(caKey))
}

func TestValidateUpstreamTLS(t *testing.T) {
	ca, cert, key, otherKey := writePEM(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(upstream string, want ...string) {
		t.Helper()
		err := validate(t, "upstreams:\n  api: "+upstream+"\nroutes: [{upstream: api}]\n")
		got := ""
		if err != nil {
			got = err.Error()
		}
		if w := strings.Join(want, "\n"); got != w {
			t.Fatalf("Validate(%s):\ngot  %s\nwant %s", upstream, got, w)
		}
	}
	q := func(s string) string { return `"` + s + `"` }

	// https targets, with and without a tls block, mixed with http
	f(`{targets: [{url: "https://api.internal"}]}`)
	f(`{targets: [{url: "https://10.0.0.1:8443"}, {url: "http://10.0.0.2"}]}`)
	f(`{targets: [{url: "https://api.internal"}], tls: {ca_file: ` + q(ca) + `, server_name: api, min_version: "1.3"}}`)
	f(`{targets: [{url: "https://api.internal"}], tls: {cert_file: ` + q(cert) + `, key_file: ` + q(key) + `}}`)
	f(`{targets: [{url: "https://api.internal"}], tls: {insecure_skip_verify: true}}`)
	f(`{targets: [{url: "https://a"}, {url: "http://a:443"}]}`,
		`upstreams.api.targets[1].url: a:443 is the address of targets[0] too; list each target once (weights give a bigger share)`)

	// the block's own problems
	f(`{targets: [{url: "http://api.internal"}], tls: {ca_file: `+q(ca)+`}}`,
		`upstreams.api.tls: applies to https:// targets only, and the upstream has none; write the targets as https://host:port, or remove tls`)
	f(`{targets: [{url: "https://a"}], tls: {min_version: "1.1"}}`,
		`upstreams.api.tls.min_version: want "1.2" or "1.3", got "1.1"`)
	f(`{targets: [{url: "https://a"}], tls: {insecure_skip_verify: true, server_name: a}}`,
		`upstreams.api.tls.insecure_skip_verify: verifies nothing, so ca_file and server_name would be ignored; remove insecure_skip_verify, or them`)
	f(`{targets: [{url: "https://a"}], tls: {cert_file: `+q(cert)+`}}`,
		`upstreams.api.tls.key_file: is empty while cert_file is set; give the client certificate's PEM private key`)
	f(`{targets: [{url: "https://a"}], tls: {key_file: `+q(key)+`}}`,
		`upstreams.api.tls.cert_file: is empty while key_file is set; give the client certificate's PEM file`)

	// files
	f(`{targets: [{url: "https://a"}], tls: {ca_file: `+q(missing)+`}}`,
		`upstreams.api.tls.ca_file: `+q(missing)+` does not exist; give the path of a PEM file (relative paths are from the gateway's working directory)`)
	f(`{targets: [{url: "https://a"}], tls: {ca_file: `+q(notPEM)+`}}`,
		`upstreams.api.tls.ca_file: `+q(notPEM)+` holds no PEM certificate; give a file of "-----BEGIN CERTIFICATE-----" blocks`)
	f(`{targets: [{url: "https://a"}], tls: {cert_file: `+q(cert)+`, key_file: `+q(missing)+`}}`,
		`upstreams.api.tls.key_file: `+q(missing)+` does not exist; give the path of a PEM file (relative paths are from the gateway's working directory)`)
	f(`{targets: [{url: "https://a"}], tls: {cert_file: `+q(cert)+`, key_file: `+q(otherKey)+`}}`,
		`upstreams.api.tls.cert_file: tls: private key does not match public key (want PEM files: cert_file `+q(cert)+` with the chain leaf first, key_file `+q(otherKey)+` its private key)`)
}

func TestUpstreamTLSLoadSum(t *testing.T) {
	ca, cert, key, _ := writePEM(t)
	tc := &UpstreamTLS{CAFile: ca, CertFile: cert, KeyFile: key}
	a, err := tc.Load()
	if err != nil {
		t.Fatalf("Load: %s", err)
	}
	if a.Roots == nil || a.Cert == nil {
		t.Fatalf("Load: got roots %v, cert %v; want both", a.Roots, a.Cert)
	}
	b, _ := tc.Load()
	if a.Sum != b.Sum {
		t.Fatalf("Load twice: sums differ for unchanged files")
	}
	ca2, _, _, _ := writePEM(t)
	data, _ := os.ReadFile(ca2)
	if err := os.WriteFile(ca, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := tc.Load()
	if a.Sum == c.Sum {
		t.Fatalf("Load after the CA file changed: got the same sum; want another")
	}
	if none, _ := (&UpstreamTLS{}).Load(); none.Roots != nil || none.Cert != nil {
		t.Fatalf("Load of an empty block: got roots %v, cert %v; want none", none.Roots, none.Cert)
	}
}
