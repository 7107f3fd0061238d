package jwt

import (
	"bytes"
	"encoding/base64"
)

// precheckMax is the longest header or payload segment precheck decodes
// (on the stack); longer ones skip the check and go to the full parse.
const precheckMax = 2048

// precheck rejects, without allocating, a token that the full parse would
// reject for its algorithm or, when the issuer is configured, its iss: the
// common case of a route accepting several issuers, where every token of
// one issuer is presented to the others first. It only ever rejects; a
// token it passes (or cannot read) gets the full verification. Its JSON
// reading is a plain scan for the member name, good enough for tokens an
// identity provider issues: a crafted one can at worst be refused here.
func (v *Verifier) precheck(token []byte) *Error {
	h, rest, ok := bytes.Cut(token, []byte{'.'})
	if !ok {
		return ErrMalformed
	}
	p, _, ok := bytes.Cut(rest, []byte{'.'})
	if !ok {
		return ErrMalformed
	}
	var buf [precheckMax]byte
	if alg, ok := segmentString(buf[:], h, `"alg"`); ok && !v.allowedBytes(alg) {
		return ErrAlgNotAllowed
	}
	if v.issuer != "" {
		if iss, ok := segmentString(buf[:], p, `"iss"`); ok && string(iss) != v.issuer {
			return ErrIssuer
		}
	}
	return nil
}

// segmentString decodes the base64url segment seg into buf and returns the
// string value of member name, when it is found plainly (no escapes).
func segmentString(buf, seg []byte, name string) ([]byte, bool) {
	if base64.RawURLEncoding.DecodedLen(len(seg)) > len(buf) {
		return nil, false
	}
	n, err := base64.RawURLEncoding.Decode(buf, seg)
	if err != nil {
		return nil, false
	}
	js := buf[:n]
	i := bytes.Index(js, []byte(name))
	if i < 0 {
		return nil, false
	}
	js = bytes.TrimLeft(js[i+len(name):], " \t\r\n")
	if len(js) == 0 || js[0] != ':' {
		return nil, false
	}
	js = bytes.TrimLeft(js[1:], " \t\r\n")
	if len(js) == 0 || js[0] != '"' {
		return nil, false
	}
	js = js[1:]
	end := bytes.IndexByte(js, '"')
	if end < 0 || bytes.IndexByte(js[:end], '\\') >= 0 {
		return nil, false
	}
	return js[:end], true
}

func (v *Verifier) allowedBytes(alg []byte) bool {
	for _, a := range v.algs {
		if a == string(alg) {
			return true
		}
	}
	return false
}
