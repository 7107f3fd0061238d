package ratelimit

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

// whoBuilder is a stand-in for auth: it sets the consumer named by the
// X-Who header, from the config's consumers, on every route.
type whoBuilder struct{}

type whoFilter struct{ consumers []*core.Consumer }

func (whoBuilder) Key(cfg *config.Config, rc *config.Route) any { return cfg.Consumers }
func (whoBuilder) Validate(*core.Env) error                     { return nil }
func (whoBuilder) Build(e *core.Env) (core.Filter, error) {
	f := &whoFilter{}
	for i, c := range e.Config.Consumers {
		f.consumers = append(f.consumers, &core.Consumer{Name: c.Name, Index: i})
	}
	return f, nil
}

func (f *whoFilter) Filter(ctx *fasthttp.RequestCtx, r *core.Request) bool {
	who := ctx.Request.Header.Peek("X-Who")
	for _, c := range f.consumers {
		if string(who) == c.Name {
			r.SetConsumer(c)
		}
	}
	return true
}

// TestConsumerKey: key: consumer counts each consumer's requests apart,
// and a consumer's own rate_limit replaces the route's for it.
func TestConsumerKey(t *testing.T) {
	h := newHarnessWith(t, `
consumers:
  - {name: alice, api_keys: ["alice-key-0123456789abcdef"]}
  - {name: bob, api_keys: ["bob-key-0123456789abcdef00"], rate_limit: {rate: 5, per: 1h}}
  - {name: carol, api_keys: ["carol-key-0123456789abcdef"]}
routes:
  - upstream: users
    auth: {any_of: [api_key]}
    rate_limit: {rate: 2, per: 1h, key: consumer}
`, nil, whoBuilder{})
	f := func(who string, wantOK int) {
		t.Helper()
		ok := 0
		for i := 0; i < 10; i++ {
			resp := h.g.GetFrom("127.0.0.1", "/x", "X-Who: "+who)
			if resp.StatusCode() == 200 {
				ok++
			} else if resp.StatusCode() != 429 {
				t.Fatalf("%s: got %d; want 200 or 429", who, resp.StatusCode())
			}
			fasthttp.ReleaseResponse(resp)
		}
		if ok != wantOK {
			t.Fatalf("%s: %d of 10 admitted; want %d", who, ok, wantOK)
		}
	}
	f("alice", 2) // the route's limit
	f("bob", 5)   // his own
	f("carol", 2) // her own bucket, not alice's
}

func TestConsumerKeyNeedsAuth(t *testing.T) {
	_, err := config.ParseChecked([]byte(upstreamBase+`
routes:
  - {upstream: users, rate_limit: {rate: 2, key: consumer}}
`), "yaml", nil, nil)
	want := `routes[0].rate_limit.key: "consumer" needs the route to authenticate its requests; add auth (such as auth: {any_of: [api_key]}) or key by "ip"`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v; want %s", err, want)
	}
}
