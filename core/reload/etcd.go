package reload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"fastgate/core/config"
)

// EtcdScheme starts a -config value that names an etcd key instead of a
// file.
const EtcdScheme = "etcd://"

// EtcdTimeout bounds one etcd request (read, status write).
const EtcdTimeout = 5 * time.Second

// Backoff between two watch attempts after a failure: it doubles from
// etcdBackoffMin up to etcdBackoffMax and starts again after a success.
const (
	etcdBackoffMin = 100 * time.Millisecond
	etcdBackoffMax = 5 * time.Second
)

// EtcdURL locates a config kept in one etcd key:
// etcd://[user:password@]host:2379[,host2:2379]/fastgate/config.
type EtcdURL struct {
	Endpoints []string // "host:port"
	Key       string   // starts with "/"
	Username  string
	Password  string
}

// String returns the URL without the password.
func (u EtcdURL) String() string {
	user := ""
	if u.Username != "" {
		user = u.Username + ":***@"
	}
	return EtcdScheme + user + strings.Join(u.Endpoints, ",") + u.Key
}

// IsEtcdURL reports whether a -config value names an etcd key.
func IsEtcdURL(s string) bool { return strings.HasPrefix(s, EtcdScheme) }

// ParseEtcdURL parses etcd://[user:password@]host:port[,host:port...]/key.
func ParseEtcdURL(s string) (EtcdURL, error) {
	const want = "want etcd://host:2379[,host2:2379]/key, such as etcd://127.0.0.1:2379/fastgate/config"
	rest, ok := strings.CutPrefix(s, EtcdScheme)
	if !ok {
		return EtcdURL{}, fmt.Errorf("reload: %q: %s", s, want)
	}
	hosts, key, _ := strings.Cut(rest, "/")
	key = "/" + key
	var u EtcdURL
	if i := strings.LastIndexByte(hosts, '@'); i >= 0 {
		user, pass, ok := strings.Cut(hosts[:i], ":")
		if !ok || user == "" || pass == "" {
			return EtcdURL{}, fmt.Errorf("reload: %q: credentials must be user:password@; %s", u.String(), want)
		}
		u.Username, u.Password, hosts = user, pass, hosts[i+1:]
	}
	if hosts == "" {
		return EtcdURL{}, fmt.Errorf("reload: %q has no etcd endpoint; %s", s, want)
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || !validPort(port) {
			return EtcdURL{}, fmt.Errorf(`reload: %q: endpoint %q is not "host:port"; %s`, s, h, want)
		}
		u.Endpoints = append(u.Endpoints, h)
	}
	if key == "/" || strings.HasSuffix(key, "/") || strings.Contains(key, "//") {
		return EtcdURL{}, fmt.Errorf("reload: %q: key %q is not a key name; %s", s, key, want)
	}
	u.Key = key
	return u, nil
}

func validPort(s string) bool {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

// Etcd reads a config kept in one etcd key and watches it: every change is
// applied through a Reloader, and each node writes whether it applied the
// revision under <key>/status/<node>. Its methods are safe for concurrent
// use.
type Etcd struct {
	loc EtcdURL
	cli *clientv3.Client

	mu   sync.Mutex
	data []byte // the value last read or watched
	rev  int64  // its mod revision; 0: never read
	// watchRev is the revision the watch starts from (the header revision
	// of the last read, plus one).
	watchRev int64
}

// NewEtcd returns an Etcd for loc. It does not connect: the first request
// does.
func NewEtcd(loc EtcdURL) (*Etcd, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   loc.Endpoints,
		DialTimeout: EtcdTimeout,
		Username:    loc.Username,
		Password:    loc.Password,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("reload: etcd %s: %w", strings.Join(loc.Endpoints, ","), err)
	}
	return &Etcd{loc: loc, cli: cli}, nil
}

// Close closes the etcd client.
func (e *Etcd) Close() error { return e.cli.Close() }

// Load parses the config value last read or watched, reading the key first
// when it was never read, with the same defaults and validation as a file
// (config.ParseChecked). A value starting with "{" is JSON, any other YAML.
func (e *Etcd) Load(d *config.Defaults) (*config.Config, error) {
	e.mu.Lock()
	data, rev := e.data, e.rev
	e.mu.Unlock()
	if rev == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), EtcdTimeout)
		defer cancel()
		var err error
		if data, rev, err = e.read(ctx); err != nil {
			return nil, err
		}
	}
	cfg, err := config.ParseChecked(data, formatOf(data), os.LookupEnv, d)
	if err != nil {
		return nil, fmt.Errorf("%s (revision %d):\n%w", e.loc, rev, err)
	}
	return cfg, nil
}

// Revision returns the mod revision of the value last read or watched.
func (e *Etcd) Revision() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rev
}

func formatOf(data []byte) string {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return "json"
	}
	return "yaml"
}

// errKeyMissing is the read of a key that does not exist.
var errKeyMissing = errors.New("reload: etcd key not found")

// read gets the key, records its value and returns it.
func (e *Etcd) read(ctx context.Context) ([]byte, int64, error) {
	resp, err := e.cli.Get(clientv3.WithRequireLeader(ctx), e.loc.Key)
	if err != nil {
		return nil, 0, fmt.Errorf("reload: read key %s from etcd at %s: %w (is etcd running and reachable?)",
			e.loc.Key, strings.Join(e.loc.Endpoints, ","), err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.watchRev = resp.Header.Revision + 1
	if len(resp.Kvs) == 0 {
		return nil, 0, fmt.Errorf("%w: key %s not found in etcd at %s; put a config there with etcdctl put %s \"$(cat gateway.yaml)\"",
			errKeyMissing, e.loc.Key, strings.Join(e.loc.Endpoints, ","), e.loc.Key)
	}
	kv := resp.Kvs[0]
	e.data, e.rev = kv.Value, kv.ModRevision
	return e.data, e.rev, nil
}

// Status is what a node writes under <key>/status/<node> after each
// config revision it tried.
type Status struct {
	Node     string    `json:"node"`
	Revision int64     `json:"revision"`
	Applied  bool      `json:"applied"`
	Error    string    `json:"error,omitempty"`
	Time     time.Time `json:"time"`
}

// StatusKey returns the key of node's status for the config at key.
func StatusKey(key, node string) string { return key + "/status/" + node }

// Watch watches the key until ctx ends, in a goroutine: each new value is
// applied with r.Reload("etcd") (r's LoadFunc must return e.Load), and
// the outcome written to the node's status key. It first writes the status
// of the value already applied (the startup config). A lost watch (etcd
// restarted, no leader) is resumed with backoff; a watch that fell behind
// a compaction reads the key again.
func (e *Etcd) Watch(ctx context.Context, r *Reloader, node string, log *slog.Logger) {
	go e.watch(ctx, r, node, log)
}

func (e *Etcd) watch(ctx context.Context, r *Reloader, node string, log *slog.Logger) {
	applied := e.Revision()
	e.putStatus(ctx, node, applied, nil, log)
	backoff := etcdBackoffMin
	for {
		err := e.watchOnce(ctx, r, node, &applied, log)
		if err == nil && ctx.Err() == nil {
			err = e.resync(ctx, r, node, &applied, log)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = etcdBackoffMin
			continue
		}
		log.Warn("config watch on etcd failed; retrying", "key", e.loc.Key, "endpoints", strings.Join(e.loc.Endpoints, ","),
			"retry_in", backoff.String(), "error", err.Error())
		e.mu.Lock()
		e.watchRev = 0 // read the key again before the next watch
		e.mu.Unlock()
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, etcdBackoffMax)
	}
}

// resync reads the key afresh, after a compaction or a lost watch, and
// applies its value once if the node has not tried that revision yet.
func (e *Etcd) resync(ctx context.Context, r *Reloader, node string, applied *int64, log *slog.Logger) error {
	rctx, cancel := context.WithTimeout(ctx, EtcdTimeout)
	_, rev, err := e.read(rctx)
	cancel()
	switch {
	case errors.Is(err, errKeyMissing):
		if *applied != -1 {
			*applied = -1
			e.putStatus(ctx, node, 0, errors.New("the config key was deleted; keeping the current config"), log)
		}
		return nil
	case err != nil:
		return err
	case rev != *applied:
		*applied = rev
		e.apply(ctx, r, node, rev, log)
	}
	return nil
}

// watchOnce watches the key from the revision after the last read until
// the watch ends. It returns nil when the key must be read again
// (compaction) and an error when the watch failed.
func (e *Etcd) watchOnce(ctx context.Context, r *Reloader, node string, applied *int64, log *slog.Logger) error {
	e.mu.Lock()
	from := e.watchRev
	e.mu.Unlock()
	if from == 0 {
		return nil // read the key first
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range e.cli.Watch(wctx, e.loc.Key, clientv3.WithRev(from)) {
		if wr.CompactRevision != 0 || errors.Is(wr.Err(), rpctypes.ErrCompacted) {
			log.Info("etcd compacted past the config watch; reading the key again", "key", e.loc.Key, "compact_rev", wr.CompactRevision)
			return nil
		}
		if err := wr.Err(); err != nil {
			return err
		}
		if len(wr.Events) == 0 {
			continue
		}
		// Only the batch's last event counts: it is the key's value now.
		ev := wr.Events[len(wr.Events)-1]
		e.mu.Lock()
		e.watchRev = wr.Header.Revision + 1
		if ev.Type == mvccpb.PUT {
			e.data, e.rev = ev.Kv.Value, ev.Kv.ModRevision
		}
		e.mu.Unlock()
		if ev.Type == mvccpb.DELETE {
			log.Warn("config key deleted from etcd; keeping the current config", "key", e.loc.Key)
			e.putStatus(ctx, node, ev.Kv.ModRevision, errors.New("the config key was deleted; keeping the current config"), log)
			*applied = -1
			continue
		}
		*applied = ev.Kv.ModRevision
		e.apply(ctx, r, node, ev.Kv.ModRevision, log)
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("watch channel closed")
}

// apply reloads the value of revision rev and writes the node's status.
func (e *Etcd) apply(ctx context.Context, r *Reloader, node string, rev int64, log *slog.Logger) {
	err := r.Reload("etcd")
	e.putStatus(ctx, node, rev, err, log)
}

// putStatus writes the node's status; a failure is logged.
func (e *Etcd) putStatus(ctx context.Context, node string, rev int64, applyErr error, log *slog.Logger) {
	st := Status{Node: node, Revision: rev, Applied: applyErr == nil, Time: time.Now().UTC()}
	if applyErr != nil {
		st.Error = applyErr.Error()
	}
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, EtcdTimeout)
	defer cancel()
	if _, err := e.cli.Put(pctx, StatusKey(e.loc.Key, node), string(b)); err != nil && ctx.Err() == nil {
		log.Warn("could not write the node's config status to etcd", "key", StatusKey(e.loc.Key, node), "error", err.Error())
	}
}

// sleep sleeps for d, or less if ctx ends; it reports whether ctx is still
// alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
