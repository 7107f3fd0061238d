package core_test

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/coretest"
)

// bgBuilder's filter serves, for a request with X-Refresh, a copy of it in
// the background and answers with what the background request got.
type bgBuilder struct{}

type bgFilter struct{ b *core.Background }

func (bgBuilder) Key(*config.Config, *config.Route) any { return true }
func (bgBuilder) Validate(*core.Env) error              { return nil }
func (bgBuilder) Build(e *core.Env) (core.Filter, error) {
	return &bgFilter{b: e.Background()}, nil
}

var bgConsumer = &core.Consumer{Name: "refresher", Index: -1}

func (f *bgFilter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	if len(ctx.Request.Header.Peek("X-Refresh")) == 0 {
		return true
	}
	var req fasthttp.Request
	ctx.Request.CopyTo(&req)
	req.Header.Del("X-Refresh")
	var resp fasthttp.Response
	if err := f.b.Serve(&req, &resp, bgConsumer, netip.MustParseAddr("10.1.2.3"), 1<<20); err != nil {
		ctx.Error(err.Error(), 500)
		return false
	}
	ctx.SetStatusCode(299)
	ctx.SetBody(resp.Body())
	return false
}

// seenBuilder's filter counts the requests it sees and the consumer.
type seenBuilder struct {
	n        *atomic.Int64
	consumer *atomic.Value
}

type seenFilter seenBuilder

func (seenBuilder) Key(*config.Config, *config.Route) any { return true }
func (seenBuilder) Validate(*core.Env) error              { return nil }
func (b seenBuilder) Build(*core.Env) (core.Filter, error) {
	f := seenFilter(b)
	return &f, nil
}

func (f *seenFilter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	f.n.Add(1)
	if c := r.Consumer(); c != nil {
		f.consumer.Store(c.Name + " " + r.ClientIP.String())
	}
	return true
}

// TestBackground: a filter's Background request runs the filters after it
// and the terminal (with the consumer and client IP given), not the
// filters before it, and the response comes back whole.
func TestBackground(t *testing.T) {
	var before, after atomic.Int64
	var consumer atomic.Value
	var upstream atomic.Int64
	gw := coretest.Start(t, `
upstreams:
  u: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - {name: r, match: {path: "/items/{id}"}, upstream: u, rewrite: {path: "/v2/{id}"}}
`, core.Options{Filters: []core.FilterBuilder{
		seenBuilder{n: &before, consumer: new(atomic.Value)}, bgBuilder{}, seenBuilder{n: &after, consumer: &consumer},
	}}, map[string]fasthttp.RequestHandler{"10.0.0.1:80": func(ctx *fasthttp.RequestCtx) {
		upstream.Add(1)
		ctx.WriteString("upstream saw " + string(ctx.Path()) + " xff " + string(ctx.Request.Header.Peek("X-Forwarded-For"))) //nolint:errcheck
	}})
	resp := gw.Do("GET", "http://gw/items/7", "X-Refresh: 1")
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 299 || string(resp.Body()) != "upstream saw /v2/7 xff 10.1.2.3" {
		t.Fatalf("got %d %q; want 299 and the upstream's answer to the rewritten path", resp.StatusCode(), resp.Body())
	}
	if before.Load() != 1 || after.Load() != 1 || upstream.Load() != 1 {
		t.Fatalf("filter before ran %d times, after %d, upstream %d; want 1, 1 (the background request only), 1", before.Load(), after.Load(), upstream.Load())
	}
	if got, _ := consumer.Load().(string); got != "refresher 10.1.2.3" {
		t.Fatalf("the filter after saw consumer and IP %q; want %q", got, "refresher 10.1.2.3")
	}
}

// TestBackgroundStreamed: a response too large to buffer, streamed by the
// proxy, is read whole for the background request, and refused past the
// limit.
func TestBackgroundStreamed(t *testing.T) {
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	gw := coretest.Start(t, `
upstreams:
  u: {targets: [{url: "http://10.0.0.1:80"}], pool: {max_buffered_body: 64KiB}}
routes:
  - {name: r, upstream: u}
`, core.Options{Filters: []core.FilterBuilder{bgBuilder{}}}, map[string]fasthttp.RequestHandler{"10.0.0.1:80": func(ctx *fasthttp.RequestCtx) {
		ctx.Write(big) //nolint:errcheck
	}})
	resp := gw.Do("GET", "http://gw/big", "X-Refresh: 1")
	if resp.StatusCode() != 299 || len(resp.Body()) != len(big) || string(resp.Body()) != string(big) {
		t.Fatalf("got %d and %d bytes; want 299 and the %d bytes", resp.StatusCode(), len(resp.Body()), len(big))
	}
	fasthttp.ReleaseResponse(resp)
}
