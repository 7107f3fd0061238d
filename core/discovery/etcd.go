package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"fastgate/core/config"
)

// Backoff between two attempts after an etcd failure: it doubles from
// etcdBackoffMin up to etcdBackoffMax and starts again after a success.
const (
	etcdBackoffMin = 100 * time.Millisecond
	etcdBackoffMax = 5 * time.Second
)

// etcdSource watches a key prefix in etcd: every key under it holds one
// target. It keeps the keys in memory and emits the whole set after the
// first read and after every batch of watch events. Run is for one
// goroutine.
type etcdSource struct {
	upstream string
	d        config.Discovery
	log      *slog.Logger

	// resumeRev, when set, is the revision the first watch starts from
	// instead of the one after the first read: tests make the watcher fall
	// behind a compaction with it.
	resumeRev int64
	// resyncs counts full reads after the first (compaction, lost watch).
	resyncs atomic.Int64
}

// newEtcdSource returns the etcd source of upstream for the discovery
// block d (type etcd, validated).
func newEtcdSource(upstream string, d *config.Discovery, log *slog.Logger) (Source, error) {
	if len(d.Endpoints) == 0 || d.Prefix == "" {
		return nil, fmt.Errorf("discovery: upstream %q: etcd discovery needs endpoints and prefix", upstream)
	}
	if log == nil {
		log = slog.Default()
	}
	return &etcdSource{upstream: upstream, d: *d, log: log}, nil
}

// Run implements Source: connect, read the prefix, emit, watch, and start
// over with backoff whenever the watch ends.
func (s *etcdSource) Run(ctx context.Context, emit func([]config.Target), report func(error)) {
	st := etcdState{src: s, emit: emit, report: report}
	backoff := etcdBackoffMin
	var cli *clientv3.Client
	defer func() {
		if cli != nil {
			cli.Close()
		}
	}()
	for ctx.Err() == nil {
		var err error
		if cli == nil {
			cli, err = s.dial()
		}
		if err == nil {
			err = st.sync(ctx, cli)
		}
		if err == nil {
			backoff = etcdBackoffMin
			err = st.watch(ctx, cli)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			st.fail(err)
		}
		if !sleepCtx(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, etcdBackoffMax)
	}
}

// dial creates the client. It does not wait for a connection: the first
// request does, within the timeout.
func (s *etcdSource) dial() (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   s.d.Endpoints,
		DialTimeout: s.d.Timeout.D(),
		Username:    s.d.Username,
		Password:    s.d.Password,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("discovery: upstream %q: etcd %s: %w", s.upstream, strings.Join(s.d.Endpoints, ","), err)
	}
	return cli, nil
}

// etcdState is the source's view of the prefix: the targets by key, and
// the revision to watch from.
type etcdState struct {
	src    *etcdSource
	emit   func([]config.Target)
	report func(error)

	keys    map[string]config.Target
	bad     map[string]error // keys whose value is not a target
	rev     int64            // next revision to watch from; 0: read first
	reads   int
	last    []config.Target // the set last emitted
	emitted bool
	failing bool
}

// sync reads the whole prefix, unless the watch can resume, and emits.
func (st *etcdState) sync(ctx context.Context, cli *clientv3.Client) error {
	if st.rev != 0 {
		return nil
	}
	s := st.src
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), s.d.Timeout.D())
	defer cancel()
	resp, err := cli.Get(rctx, s.d.Prefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("discovery: upstream %q: read prefix %q from etcd %s: %w", s.upstream, s.d.Prefix, strings.Join(s.d.Endpoints, ","), err)
	}
	if st.reads++; st.reads > 1 {
		s.resyncs.Add(1)
	}
	st.keys = make(map[string]config.Target, len(resp.Kvs))
	st.bad = make(map[string]error)
	for _, kv := range resp.Kvs {
		st.put(kv)
	}
	st.rev = resp.Header.Revision + 1
	if s.resumeRev != 0 {
		st.rev, s.resumeRev = s.resumeRev, 0
	}
	st.publish()
	return nil
}

// watch applies the prefix's changes from st.rev until the watch ends. It
// returns nil when the watch must start over from a fresh read
// (compaction) and an error when it failed.
func (st *etcdState) watch(ctx context.Context, cli *clientv3.Client) error {
	s := st.src
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := cli.Watch(wctx, s.d.Prefix, clientv3.WithPrefix(), clientv3.WithRev(st.rev))
	for wr := range wch {
		if wr.CompactRevision != 0 || errors.Is(wr.Err(), rpctypes.ErrCompacted) {
			// The revisions we missed are gone: read the prefix afresh.
			s.log.Info("discovery: etcd compacted past the watch; reading the prefix again",
				"upstream", s.upstream, "prefix", s.d.Prefix, "watch_rev", st.rev, "compact_rev", wr.CompactRevision)
			st.rev = 0
			return nil
		}
		if err := wr.Err(); err != nil {
			st.rev = 0
			return fmt.Errorf("discovery: upstream %q: watch prefix %q on etcd %s: %w", s.upstream, s.d.Prefix, strings.Join(s.d.Endpoints, ","), err)
		}
		if len(wr.Events) == 0 {
			continue
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				delete(st.keys, string(ev.Kv.Key))
				delete(st.bad, string(ev.Kv.Key))
			} else {
				st.put(ev.Kv)
			}
		}
		st.rev = wr.Header.Revision + 1
		st.publish()
	}
	if ctx.Err() != nil {
		return nil
	}
	// The channel closed without a reason: the client gave up (no leader,
	// closed connection). Read again after the backoff.
	st.rev = 0
	return fmt.Errorf("discovery: upstream %q: watch of prefix %q on etcd %s ended", s.upstream, s.d.Prefix, strings.Join(s.d.Endpoints, ","))
}

// put records the target of one key, or why its value is not one.
func (st *etcdState) put(kv *mvccpb.KeyValue) {
	key := string(kv.Key)
	t, err := parseEtcdTarget(kv.Value)
	if err == nil {
		err = config.ValidateTargets(key, []config.Target{t})
	}
	if err != nil {
		delete(st.keys, key)
		st.bad[key] = err
		return
	}
	delete(st.bad, key)
	st.keys[key] = t
}

// publish emits the target set when it changed, and reports the keys that
// were skipped.
func (st *etcdState) publish() {
	s := st.src
	keys := make([]string, 0, len(st.keys))
	for k := range st.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	set := make([]config.Target, 0, len(keys))
	problems := st.problems()
	byAddr := make(map[string]string, len(keys))
	for _, k := range keys {
		t := st.keys[k]
		addr, _ := t.Addr() // validated by put
		if first, dup := byAddr[addr]; dup {
			problems = append(problems, fmt.Sprintf("key %q: %s is the address of key %q too; skipped", k, addr, first))
			continue
		}
		byAddr[addr] = k
		set = append(set, t)
	}
	switch {
	case len(set) == 0 && !s.d.AllowEmpty:
		problems = append(problems, fmt.Sprintf("prefix %q holds no valid target; keeping the last set (set allow_empty: true to let an empty prefix empty the upstream)", s.d.Prefix))
	case !st.emitted || !slices.Equal(set, st.last):
		st.last, st.emitted = set, true
		st.emit(set)
	}
	if len(problems) > 0 {
		st.fail(fmt.Errorf("discovery: upstream %q: etcd prefix %q: %s", s.upstream, s.d.Prefix, strings.Join(problems, "; ")))
		return
	}
	if st.failing {
		st.failing = false
		st.report(nil)
	}
}

// problems lists the keys whose value is not a target, sorted.
func (st *etcdState) problems() []string {
	var out []string
	for k, err := range st.bad {
		out = append(out, fmt.Sprintf("key %q: %s; skipped", k, err))
	}
	slices.Sort(out)
	return out
}

func (st *etcdState) fail(err error) {
	st.failing = true
	st.report(err)
}

// parseEtcdTarget reads one key's value: JSON {"url": "...", "weight": N}
// or a bare URL.
func parseEtcdTarget(v []byte) (config.Target, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return config.Target{}, errors.New(`empty value; want {"url": "http://host:port", "weight": 1} or a bare URL`)
	}
	if v[0] != '{' {
		return config.Target{URL: string(v)}, nil
	}
	var t config.Target
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return config.Target{}, fmt.Errorf(`value %q is not JSON {"url": "http://host:port", "weight": 1}: %s`, v, err)
	}
	return t, nil
}
