package jwk

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestParseSet(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pt, _ := ec.PublicKey.Bytes()
	e := base64.RawURLEncoding.EncodeToString
	x, y := e(pt[1:33]), e(pt[33:])
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	f := func(doc string, wantKeys int, wantErr string, wantSkipped ...string) {
		t.Helper()
		keys, skipped, err := ParseSet([]byte(doc))
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("ParseSet(%s) got error %v; want %q", doc, err, wantErr)
			}
			return
		}
		if err != nil || len(keys) != wantKeys || len(skipped) != len(wantSkipped) {
			t.Fatalf("ParseSet(%s) got %d keys, skipped %v, error %v; want %d keys, skipped %q", doc, len(keys), skipped, err, wantKeys, wantSkipped)
		}
		for i, w := range wantSkipped {
			if !strings.Contains(skipped[i].Error(), w) {
				t.Fatalf("ParseSet(%s) skipped[%d] got %q; want it to contain %q", doc, i, skipped[i], w)
			}
		}
	}
	ecJWK := `{"kty":"EC","crv":"P-256","kid":"a","x":"` + x + `","y":"` + y + `"}`
	f(`{"keys":[`+ecJWK+`]}`, 1, "")
	f(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"`+e(edPub)+`","alg":"EdDSA"}]}`, 1, "")
	f(`{"keys":[]}`, 0, "")
	f(`not json`, 0, "not a JWK set")
	f(`{"keys":{}}`, 0, "not a JWK set")
	f(`{}`, 0, `no "keys" array`)
	f(`{"keys":[`+ecJWK+`, 7, {"kty":"oct","k":"c2VjcmV0"}, {"kty":"EC","use":"enc"}, {"kty":"XYZ"}]}`, 1, "",
		"keys[1]: not a JWK object", `keys[2]: kid "": kty "oct"`, `use "enc"`, `unknown kty "XYZ"`)
	f(`{"keys":[{"kty":"EC","crv":"P-256","x":"`+x+`","y":"`+x+`"}]}`, 0, "", "not on P-256")
	f(`{"keys":[{"kty":"EC","crv":"P-192","x":"`+x+`","y":"`+y+`"}]}`, 0, "", `crv "P-192"`)
	f(`{"keys":[{"kty":"EC","crv":"P-256","x":"!!","y":"`+y+`"}]}`, 0, "", `"x" is not base64url`)
	f(`{"keys":[{"kty":"EC","crv":"P-256","alg":"ES384","x":"`+x+`","y":"`+y+`"}]}`, 0, "", `alg "ES384" does not fit`)
	f(`{"keys":[{"kty":"EC","crv":"P-256","alg":"HS256","x":"`+x+`","y":"`+y+`"}]}`, 0, "", `alg "HS256"`)
	f(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, 0, "", "RSA key has 17 bits")
	f(`{"keys":[{"kty":"RSA","n":"`+e(make([]byte, 256))+`","e":"AAAAAAE"}]}`, 0, "", `"e" is 5 bytes`)
	f(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`, 0, "", "is 3 bytes; want 32")
	f(`{"keys":[{"kty":"OKP","crv":"X25519","x":"AAAA"}]}`, 0, "", `crv "X25519"`)
}

func TestParsePEM(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ek224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	der := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	block := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"}, NotAfter: time.Now().Add(time.Hour)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ek.PublicKey, ek)
	f := func(doc, want string) {
		t.Helper()
		pub, err := ParsePEM([]byte(doc))
		got := ""
		if err != nil {
			got = err.Error()
		} else {
			got = Describe(pub)
		}
		if !strings.Contains(got, want) {
			t.Fatalf("ParsePEM got %q; want %q", got, want)
		}
	}
	f(block("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(&rk.PublicKey))), "RSA-2048")
	f(block("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rk.PublicKey)), "RSA-2048")
	f(block("CERTIFICATE", der(cert, err)), "EC P-384")
	f(block("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(&small.PublicKey))), "RSA key has 1024 bits; want at least 2048")
	f(block("PUBLIC KEY", der(x509.MarshalPKIXPublicKey(&ek224.PublicKey))), "curve P-224 is not supported")
	f(block("PRIVATE KEY", der(x509.MarshalPKCS8PrivateKey(rk))), "is a private key; give the public key")
	f(block("FOO", []byte{1}), `PEM block "FOO" is not a public key`)
	f(block("PUBLIC KEY", []byte{1, 2}), `PEM block "PUBLIC KEY": asn1`)
	f("hello", "no PEM block")
}

func TestFits(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	f := func(alg string, pub any, want bool) {
		t.Helper()
		if got := Fits(alg, pub); got != want {
			t.Fatalf("Fits(%s, %s) got %v; want %v", alg, Describe(pub), got, want)
		}
	}
	f("RS256", &rk.PublicKey, true)
	f("PS512", &rk.PublicKey, true)
	f("ES256", &rk.PublicKey, false)
	f("HS256", &rk.PublicKey, false)
	f("ES256", &p256.PublicKey, true)
	f("ES512", &p256.PublicKey, false)
	f("ES512", &p521.PublicKey, true)
	f("EdDSA", ed, true)
	f("EdDSA", &p256.PublicKey, false)
	f("HS256", []byte("secret"), false)
	if !HMAC("HS384") || HMAC("RS256") || HMAC("HS") || Known("none") || !Known("EdDSA") {
		t.Fatal("HMAC/Known disagree with the algorithm list")
	}
}
