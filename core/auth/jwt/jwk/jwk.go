// Package jwk reads the public keys JWTs are verified with: JSON Web Key
// sets (RFC 7517, key types of RFC 7518 and RFC 8037) and PEM files, and
// knows which key fits which JWS algorithm. It is pure parsing, shared by
// config validation (fastgate -check) and the verifier, so both accept
// exactly the same keys.
package jwk

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// MinRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const MinRSABits = 2048

// Algorithms are the JWS algorithms a verifier may pin, in the order
// error messages list them. "none" is not one of them.
var Algorithms = []string{
	"HS256", "HS384", "HS512",
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// Known reports whether alg is one of Algorithms.
func Known(alg string) bool {
	for _, a := range Algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

// HMAC reports whether alg is a shared-secret algorithm (HS256, HS384,
// HS512).
func HMAC(alg string) bool { return len(alg) == 5 && alg[:2] == "HS" }

// Fits reports whether key pub can verify signatures of alg: an RSA key
// (RS*, PS*), an ECDSA key on alg's curve (ES256 P-256, ES384 P-384, ES512
// P-521), an Ed25519 key (EdDSA). HMAC algorithms take no public key.
func Fits(alg string, pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// Key is one verification key of a set.
type Key struct {
	// ID is the key's "kid", "" when it has none.
	ID string
	// Alg is the key's "alg", "" when it has none: the key then verifies
	// any algorithm its type Fits.
	Alg string
	// Public is *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
}

// rawKey is a JWK as JSON has it.
type rawKey struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseSet parses a JWK set, {"keys": [...]}. Keys that cannot verify
// signatures here (use other than "sig", kty "oct" or unknown, a bad
// member) are left out, each with a reason in skipped ("keys[2]: ...");
// RFC 7517 §5 says to ignore them. err is a document that is not a JWK
// set at all.
func ParseSet(data []byte) (keys []Key, skipped []error, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("jwk: not a JWK set: %s; want {\"keys\": [{\"kty\": ...}, ...]}", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New(`jwk: not a JWK set: no "keys" array; want {"keys": [{"kty": ...}, ...]}`)
	}
	for i, m := range set.Keys {
		k, err := parseKey(m)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("keys[%d]: %w", i, err))
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

func parseKey(m json.RawMessage) (Key, error) {
	var r rawKey
	if err := json.Unmarshal(m, &r); err != nil {
		return Key{}, fmt.Errorf("not a JWK object: %s", err)
	}
	if r.Use != "" && r.Use != "sig" {
		return Key{}, fmt.Errorf("kid %q has use %q; only \"sig\" keys verify signatures", r.Kid, r.Use)
	}
	if r.Alg != "" && (!Known(r.Alg) || HMAC(r.Alg)) {
		return Key{}, fmt.Errorf("kid %q has alg %q; want a public-key algorithm (%s)", r.Kid, r.Alg, strings.Join(Algorithms[3:], ", "))
	}
	var pub crypto.PublicKey
	var err error
	switch r.Kty {
	case "RSA":
		pub, err = rsaKey(r.N, r.E)
	case "EC":
		pub, err = ecKey(r.Crv, r.X, r.Y)
	case "OKP":
		pub, err = okpKey(r.Crv, r.X)
	case "oct":
		err = errors.New(`kty "oct" (a shared secret) is not read from JWK sets; give an HMAC secret with "secret"`)
	default:
		err = fmt.Errorf("unknown kty %q; want RSA, EC or OKP", r.Kty)
	}
	if err != nil {
		return Key{}, fmt.Errorf("kid %q: %w", r.Kid, err)
	}
	if r.Alg != "" && !Fits(r.Alg, pub) {
		return Key{}, fmt.Errorf("kid %q: alg %q does not fit its %s key", r.Kid, r.Alg, r.Kty)
	}
	return Key{ID: r.Kid, Alg: r.Alg, Public: pub}, nil
}

// b64 decodes base64url without padding (RFC 7515 §2), tolerating
// padding.
func b64(name, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%q is not base64url: %q", name, s)
	}
	return b, nil
}

func rsaKey(n, e string) (*rsa.PublicKey, error) {
	nb, err := b64("n", n)
	if err != nil {
		return nil, err
	}
	eb, err := b64("e", e)
	if err != nil {
		return nil, err
	}
	if len(eb) > 4 {
		return nil, fmt.Errorf(`"e" is %d bytes; want at most 4`, len(eb))
	}
	exp := 0
	for _, c := range eb {
		exp = exp<<8 | int(c)
	}
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: exp}
	return k, checkRSA(k)
}

func checkRSA(k *rsa.PublicKey) error {
	if k.E < 3 || k.E%2 == 0 {
		return fmt.Errorf("RSA exponent %d is invalid; want an odd number >= 3", k.E)
	}
	if bits := k.N.BitLen(); bits < MinRSABits {
		return fmt.Errorf("RSA key has %d bits; want at least %d", bits, MinRSABits)
	}
	return nil
}

var curves = map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}

func ecKey(crv, x, y string) (*ecdsa.PublicKey, error) {
	c, ok := curves[crv]
	if !ok {
		return nil, fmt.Errorf("EC crv %q is not supported; want P-256, P-384 or P-521", crv)
	}
	xb, err := b64("x", x)
	if err != nil {
		return nil, err
	}
	yb, err := b64("y", y)
	if err != nil {
		return nil, err
	}
	size := (c.Params().BitSize + 7) / 8
	if len(xb) > size || len(yb) > size {
		return nil, fmt.Errorf(`"x" and "y" must be %d bytes for %s`, size, crv)
	}
	// RFC 7518 §6.2.1.2 wants full-length coordinates; left-pad the ones
	// that dropped leading zeros.
	pt := make([]byte, 1+2*size)
	pt[0] = 4
	copy(pt[1+size-len(xb):], xb)
	copy(pt[1+2*size-len(yb):], yb)
	k, err := ecdsa.ParseUncompressedPublicKey(c, pt)
	if err != nil {
		return nil, fmt.Errorf("EC point is not on %s: %s", crv, err)
	}
	return k, nil
}

func okpKey(crv, x string) (ed25519.PublicKey, error) {
	if crv != "Ed25519" {
		return nil, fmt.Errorf("OKP crv %q is not supported; want Ed25519", crv)
	}
	xb, err := b64("x", x)
	if err != nil {
		return nil, err
	}
	if len(xb) != ed25519.PublicKeySize {
		return nil, fmt.Errorf(`Ed25519 "x" is %d bytes; want %d`, len(xb), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(xb), nil
}

// ParsePEM reads the first PEM block of data: a public key ("PUBLIC
// KEY", "RSA PUBLIC KEY") or a certificate ("CERTIFICATE", whose key is
// used; its validity dates and chain are not checked). The key is RSA (at
// least MinRSABits), ECDSA (P-256, P-384, P-521) or Ed25519.
func ParsePEM(data []byte) (crypto.PublicKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block; want -----BEGIN PUBLIC KEY----- or -----BEGIN CERTIFICATE-----")
	}
	var pub any
	var err error
	switch b.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			pub = c.PublicKey
		}
	default:
		if strings.Contains(b.Type, "PRIVATE") {
			return nil, fmt.Errorf("PEM block %q is a private key; give the public key (openssl pkey -in key.pem -pubout)", b.Type)
		}
		return nil, fmt.Errorf("PEM block %q is not a public key; want PUBLIC KEY or CERTIFICATE", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("PEM block %q: %s", b.Type, err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k, checkRSA(k)
	case *ecdsa.PublicKey:
		if _, ok := curves[k.Curve.Params().Name]; !ok {
			return nil, fmt.Errorf("ECDSA curve %s is not supported; want P-256, P-384 or P-521", k.Curve.Params().Name)
		}
		return k, nil
	case ed25519.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("key type %T is not supported; want RSA, ECDSA or Ed25519", pub)
}

// Equal reports whether a and b are the same key material.
func Equal(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// Describe names a key's type for messages: "RSA-2048", "EC P-256",
// "Ed25519".
func Describe(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RSA-" + strconv.Itoa(k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}
