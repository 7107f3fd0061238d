package jwt

import (
	"errors"
	"fmt"
	"os"

	"fastgate/core/auth/jwt/jwk"
	"fastgate/core/config"
)

// keySet is the immutable set of keys a Verifier verifies with at one
// time; a JWKS refresh swaps in a new one.
type keySet struct {
	byKid map[string][]*key // keys with a kid
	anon  []*key            // keys without kid
	all   []*key
}

func newKeySet(static, fetched []*key) *keySet {
	s := &keySet{byKid: make(map[string][]*key)}
	for _, ks := range [][]*key{static, fetched} {
		for _, k := range ks {
			s.all = append(s.all, k)
			if k.kid == "" {
				s.anon = append(s.anon, k)
			} else {
				s.byKid[k.kid] = append(s.byKid[k.kid], k)
			}
		}
	}
	return s
}

// has reports whether k is in the set. Sets hold a handful of keys; a
// scan of pointers beats hashing.
func (s *keySet) has(k *key) bool {
	for _, a := range s.all {
		if a == k {
			return true
		}
	}
	return false
}

// candidates appends to dst the keys that may verify a token with kid
// and alg: the kid's keys, else the keys without kid; every key when kid
// is "". Only keys that fit alg are returned; the error says why there
// are none.
func (s *keySet) candidates(kid, alg string, dst []*key) ([]*key, *Error) {
	if kid != "" {
		if ks := s.byKid[kid]; len(ks) > 0 {
			dst = appendFitting(dst, ks, alg)
			if len(dst) == 0 {
				return nil, ErrKeyMismatch
			}
			return dst, nil
		}
		if dst = appendFitting(dst, s.anon, alg); len(dst) == 0 {
			return nil, ErrUnknownKid
		}
		return dst, nil
	}
	if dst = appendFitting(dst, s.all, alg); len(dst) == 0 {
		return nil, ErrNoKey
	}
	return dst, nil
}

func appendFitting(dst, ks []*key, alg string) []*key {
	for _, k := range ks {
		if k.fits(alg) {
			dst = append(dst, k)
		}
	}
	return dst
}

// loadStatic reads the issuer's configured keys: the HMAC secret, the
// PEM files and the inline JWKS.
func (v *Verifier) loadStatic(cfg *config.JWTIssuer) error {
	if v.hmac {
		if cfg.Secret == "" {
			return errors.New("HMAC algorithms need secret")
		}
		if len(cfg.PublicKeys) > 0 || cfg.JWKS != "" || cfg.JWKSURL != "" {
			return errors.New("HMAC algorithms verify with secret only; remove public_keys, jwks and jwks_url")
		}
		v.static = append(v.static, &key{pub: []byte(cfg.Secret)})
		return nil
	}
	if cfg.Secret != "" {
		return errors.New("secret applies to HS* algorithms only")
	}
	for i, pk := range cfg.PublicKeys {
		data, err := os.ReadFile(pk.File)
		if err != nil {
			return fmt.Errorf("public_keys[%d].file: %w", i, err)
		}
		pub, err := jwk.ParsePEM(data)
		if err != nil {
			return fmt.Errorf("public_keys[%d].file: %s: %w", i, pk.File, err)
		}
		v.static = append(v.static, &key{kid: pk.Kid, pub: pub})
	}
	if cfg.JWKS != "" {
		keys, skipped, err := jwk.ParseSet([]byte(cfg.JWKS))
		if err != nil {
			return fmt.Errorf("jwks: %w", err)
		}
		if len(skipped) > 0 {
			return fmt.Errorf("jwks: %w", skipped[0])
		}
		for _, k := range keys {
			v.static = append(v.static, &key{kid: k.ID, alg: k.Alg, pub: k.Public})
		}
	}
	if len(v.static) == 0 && cfg.JWKSURL == "" {
		return errors.New("no key: set public_keys, jwks or jwks_url")
	}
	return nil
}

// reuse returns the keys of a fetched set, taking the old key for each
// one that is unchanged (kid, alg and material), so that tokens cached
// with it stay valid across refreshes.
func reuse(old []*key, fresh []jwk.Key) []*key {
	out := make([]*key, 0, len(fresh))
	for _, f := range fresh {
		k := &key{kid: f.ID, alg: f.Alg, pub: f.Public}
		for _, o := range old {
			if o.kid == f.ID && o.alg == f.Alg && jwk.Equal(o.pub, f.Public) {
				k = o
				break
			}
		}
		out = append(out, k)
	}
	return out
}
