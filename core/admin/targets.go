package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

// The runtime target API (README "Changing targets at run time"):
//
//	PUT    /upstreams/{name}/targets         replace the list
//	POST   /upstreams/{name}/targets         add one target
//	DELETE /upstreams/{name}/targets/{addr}  remove one
//
// Each change is one snapshot swap (core.Gateway.SetTargets) that keeps
// the state of the targets that stay. ?drain=DURATION makes the call wait,
// up to DURATION, until the requests that were running on removed targets
// have finished. Changes last until the next reload of the config.

// maxDrain caps ?drain: an admin call should not hang for hours.
const maxDrain = 10 * time.Minute

// targetsBody is the body of PUT (a list, or {"targets": [...]}) and POST
// (one target) requests, and of every answer.
type targetsBody struct {
	Targets []config.Target `json:"targets"`
}

// targetsAnswer is what a change answers.
type targetsAnswer struct {
	Upstream string          `json:"upstream"`
	Source   string          `json:"source"`
	Targets  []config.Target `json:"targets"`
	Added    []string        `json:"added,omitempty"`
	Removed  []string        `json:"removed,omitempty"`
	// Drained: ?drain was given and the removed targets' requests have all
	// finished; InFlight counts those still running when it timed out.
	Drained  *bool `json:"drained,omitempty"`
	InFlight int64 `json:"in_flight,omitempty"`
}

// tokenSet refuses changes on an admin listener without a token: reading
// state without one is a choice for loopback listeners, changing where
// traffic goes is not.
func (s *Server) tokenSet(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if s.gw.Snapshot().Config().Admin.Token == "" {
			writeJSON(ctx, fasthttp.StatusForbidden, errorBody{Error: "changing targets at run time needs an admin token: set admin.token in the config (such as admin: {token: \"${FASTGATE_ADMIN_TOKEN}\"}) and send Authorization: Bearer <token>"})
			return
		}
		h(ctx)
	}
}

func (s *Server) putTargets(ctx *fasthttp.RequestCtx) {
	name := ctx.UserValue("name").(string)
	targets, err := decodeTargets(ctx.PostBody(), true)
	if err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	s.change(ctx, name, func([]config.Target) ([]config.Target, error) { return targets, nil })
}

func (s *Server) addTarget(ctx *fasthttp.RequestCtx) {
	name := ctx.UserValue("name").(string)
	var t config.Target
	if err := strictDecode(ctx.PostBody(), &t); err != nil || t.URL == "" {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: `want a JSON target, such as {"url": "http://10.0.0.5:8080", "weight": 2}`})
		return
	}
	s.change(ctx, name, func(cur []config.Target) ([]config.Target, error) {
		addr, err := t.Addr()
		if err == nil && indexOf(cur, addr) >= 0 {
			return nil, fmt.Errorf("%s is already a target of upstream %q; PUT the whole list to change its weight", addr, name)
		}
		return append(cur, t), nil // a bad URL is reported by SetTargets, with its path
	})
}

func (s *Server) deleteTarget(ctx *fasthttp.RequestCtx) {
	name := ctx.UserValue("name").(string)
	addr := ctx.UserValue("addr").(string)
	if strings.Contains(addr, "://") {
		a, err := config.Target{URL: addr}.Addr()
		if err != nil {
			writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: "target: " + err.Error()})
			return
		}
		addr = a
	}
	s.change(ctx, name, func(cur []config.Target) ([]config.Target, error) {
		i := indexOf(cur, addr)
		if i < 0 {
			return nil, errNotTarget{fmt.Sprintf("%s is not a target of upstream %q; GET /upstreams lists them (by host:port)", addr, name)}
		}
		return slices.Delete(slices.Clone(cur), i, i+1), nil
	})
}

type errNotTarget struct{ msg string }

func (e errNotTarget) Error() string { return e.msg }

// change computes the upstream's new target list from its current one
// with next, applies it, and answers; with ?drain it first waits for the
// removed targets to drain.
func (s *Server) change(ctx *fasthttp.RequestCtx, name string, next func(cur []config.Target) ([]config.Target, error)) {
	drain, err := drainArg(ctx)
	if err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	cur, _, err := s.gw.Targets(name)
	if err != nil {
		writeJSON(ctx, fasthttp.StatusNotFound, errorBody{Error: fmt.Sprintf("no upstream %q; GET /upstreams lists them", name)})
		return
	}
	targets, err := next(cur)
	if err != nil {
		status := fasthttp.StatusConflict
		if errors.As(err, new(errNotTarget)) {
			status = fasthttp.StatusNotFound
		}
		writeJSON(ctx, status, errorBody{Error: err.Error()})
		return
	}
	// The list may have changed since Targets; SetTargets serializes the
	// swaps, and the answer reports the list it applied.
	if err := s.gw.SetTargets(name, targets, core.SourceAdmin); err != nil {
		status := fasthttp.StatusBadRequest
		switch {
		case errors.Is(err, core.ErrDiscovered):
			status = fasthttp.StatusConflict
		case errors.Is(err, core.ErrNoUpstream):
			status = fasthttp.StatusNotFound
		}
		writeJSON(ctx, status, errorBody{Error: "targets rejected; nothing changed", Problems: Problems(err)})
		return
	}
	ans := targetsAnswer{Upstream: name, Source: core.SourceAdmin, Targets: targets}
	ans.Added, ans.Removed = diffAddrs(cur, targets)
	s.log.Info("targets changed through the admin API", "upstream", name, "added", ans.Added, "removed", ans.Removed)
	status := fasthttp.StatusOK
	if drain > 0 && len(ans.Removed) > 0 {
		dctx, cancel := context.WithTimeout(context.Background(), drain)
		n, err := s.gw.WaitDrained(dctx, name, ans.Removed)
		cancel()
		drained := err == nil
		ans.Drained, ans.InFlight = &drained, n
		if !drained {
			status = fasthttp.StatusAccepted
		}
	}
	writeJSON(ctx, status, ans)
}

// drainArg parses ?drain=DURATION (0 or absent: no wait).
func drainArg(ctx *fasthttp.RequestCtx) (time.Duration, error) {
	v := ctx.QueryArgs().Peek("drain")
	if len(v) == 0 {
		return 0, nil
	}
	d, err := config.ParseDuration(string(v))
	if err != nil || d < 0 || d.D() > maxDrain {
		return 0, fmt.Errorf("drain=%q: want a duration up to %s, such as drain=30s", v, maxDrain)
	}
	return d.D(), nil
}

// decodeTargets reads a list of targets, bare or as {"targets": [...]}.
func decodeTargets(body []byte, allowEmpty bool) ([]config.Target, error) {
	const want = `want a JSON list of targets, such as {"targets": [{"url": "http://10.0.0.5:8080", "weight": 2}]}`
	var list []config.Target
	trimmed := bytes.TrimSpace(body)
	switch {
	case bytes.HasPrefix(trimmed, []byte("[")):
		if err := strictDecode(trimmed, &list); err != nil {
			return nil, fmt.Errorf("%s (%v)", want, err)
		}
	default:
		var b targetsBody
		if err := strictDecode(trimmed, &b); err != nil || b.Targets == nil {
			return nil, errors.New(want)
		}
		list = b.Targets
	}
	if len(list) == 0 && !allowEmpty {
		return nil, errors.New(want)
	}
	return list, nil
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// indexOf returns the index of the target at addr in list, or -1.
func indexOf(list []config.Target, addr string) int {
	for i, t := range list {
		if a, err := t.Addr(); err == nil && a == addr {
			return i
		}
	}
	return -1
}

// diffAddrs lists the addresses next adds to cur and those it removes.
func diffAddrs(cur, next []config.Target) (added, removed []string) {
	for _, t := range next {
		if a, err := t.Addr(); err == nil && indexOf(cur, a) < 0 {
			added = append(added, a)
		}
	}
	for _, t := range cur {
		if a, err := t.Addr(); err == nil && indexOf(next, a) < 0 {
			removed = append(removed, a)
		}
	}
	return added, removed
}
