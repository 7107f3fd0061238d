package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/crypto/bcrypt"

	"fastgate/core"
	"fastgate/core/config"
)

// consumer is a configured consumer, compiled once per filter.
type consumer struct {
	core.Consumer
	groups string // Groups comma-joined, for the groups header
	// requests counts the route's requests from the consumer; nil in
	// Validate.
	requests *metrics.Counter
}

// apiKey is one API key: its SHA-256 and its consumer.
type apiKey struct {
	digest [sha256.Size]byte
	c      *consumer
}

// basicUser is one basic-auth user. Its bcrypt hash costs ~50ms to
// check, so a password that matched once is remembered as
// SHA-256(salt || password), and later requests cost a hash compare.
type basicUser struct {
	c    *consumer
	hash []byte
	// ok is the digest of the last password that matched, or nil.
	ok atomic.Pointer[[sha256.Size]byte]
}

// consumers are the config's consumers and their credentials. It is
// read-only after newConsumers, but for basicUser.ok, and safe for
// concurrent use.
type consumers struct {
	list   []*consumer
	byName map[string]*consumer
	keys   map[[sha256.Size]byte]*apiKey
	users  map[string]*basicUser
	// decoy is a configured bcrypt hash, compared for unknown users so
	// that they cost what known ones do.
	decoy []byte
	b     *Builder // salt and bcrypt semaphore
}

func newConsumers(b *Builder, list []*config.Consumer) *consumers {
	t := &consumers{
		b:      b,
		byName: make(map[string]*consumer, len(list)),
		keys:   make(map[[sha256.Size]byte]*apiKey),
		users:  make(map[string]*basicUser),
	}
	for i, cc := range list {
		if cc == nil {
			continue
		}
		c := &consumer{
			Consumer: core.Consumer{Name: cc.Name, Groups: cc.Groups, Index: i},
			groups:   strings.Join(cc.Groups, ","),
		}
		t.list = append(t.list, c)
		t.byName[c.Name] = c
		for _, k := range cc.APIKeys {
			if d, ok := config.APIKeyDigest(k); ok {
				t.keys[d] = &apiKey{digest: d, c: c}
			}
		}
		if ba := cc.BasicAuth; ba != nil {
			t.users[ba.Username] = &basicUser{c: c, hash: []byte(ba.PasswordHash)}
			if t.decoy == nil {
				t.decoy = []byte(ba.PasswordHash)
			}
		}
	}
	return t
}

// apiKey returns the consumer of key, or nil. The map is keyed by the
// key's SHA-256, so its lookup time says nothing of the key; the digest
// found is compared again in constant time.
func (t *consumers) apiKey(key []byte) *consumer {
	d := sha256.Sum256(key)
	k := t.keys[d]
	if k == nil || subtle.ConstantTimeCompare(d[:], k.digest[:]) != 1 {
		return nil
	}
	return k.c
}

// basic checks user and pass: a password that matched before costs a
// SHA-256; another one a bcrypt compare, at most GOMAXPROCS at once.
// Failures are never remembered.
func (t *consumers) basic(user, pass []byte) (*consumer, outcome) {
	u := t.users[string(user)]
	if u == nil {
		if t.decoy != nil {
			t.b.bcrypt(t.decoy, pass)
		}
		return nil, invalid
	}
	d := t.b.digest(pass)
	if ok := u.ok.Load(); ok != nil && subtle.ConstantTimeCompare(d[:], ok[:]) == 1 {
		return u.c, succeeded
	}
	if !t.b.bcrypt(u.hash, pass) {
		return nil, invalid
	}
	p := new([sha256.Size]byte) // d itself stays on the stack
	*p = d
	u.ok.Store(p)
	return u.c, succeeded
}

// digest is SHA-256(salt || pass), the remembered form of a password.
func (b *Builder) digest(pass []byte) [sha256.Size]byte {
	var in [saltLen + maxBasic]byte
	n := copy(in[:], b.salt[:])
	n += copy(in[n:], pass)
	return sha256.Sum256(in[:n])
}

// bcrypt compares pass with hash, waiting for one of the Builder's
// GOMAXPROCS slots: a flood of bad passwords queues instead of taking
// every core at once.
func (b *Builder) bcrypt(hash, pass []byte) bool {
	b.sem <- struct{}{}
	defer func() { <-b.sem }()
	return bcrypt.CompareHashAndPassword(hash, pass) == nil
}
