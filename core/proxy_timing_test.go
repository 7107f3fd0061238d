package core

import (
	"bytes"
	"net"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

const benchConfig = `
server: {trusted_proxies: ["10.0.0.0/8"]}
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}]}
routes:
  - name: user
    match: {path: "/api/users/{id}", methods: [GET]}
    upstream: users
    rewrite: {path: "/users/{id}"}
  - name: orders
    match: {path: "/api/orders/{rest:*}", methods: [POST]}
    upstream: users
    rewrite: {strip_prefix: /api}
  - name: static
    match: {path: "/static/{rest:*}"}
    upstream: users
`

var (
	smallBody = []byte(`{"id":42,"name":"Ada Lovelace","email":"ada@example.com","team":"analytics"}`)
	bigBody   = bytes.Repeat([]byte("x"), 16<<10)
)

func make1K() []byte { return bytes.Repeat([]byte("p"), 1024) }

// benchUpstream answers like a small JSON service; /static/ gets 16 KiB.
func benchUpstream(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetContentTypeBytes(strContentTypeJSON)
	if bytes.HasPrefix(ctx.Path(), []byte("/static/")) {
		ctx.Response.SetBodyRaw(bigBody)
		return
	}
	ctx.Response.SetBodyRaw(smallBody)
}

func benchHarness(t testing.TB, extra ...string) *harness {
	return benchHarnessConfig(t, nil, extra...)
}

// benchHarnessConfig is benchHarness with the base config changed by opts.
func benchHarnessConfig(t testing.TB, opts []func(*string), extra ...string) *harness {
	cfg := benchConfig
	for _, o := range opts {
		o(&cfg)
	}
	for _, e := range extra {
		cfg += e + "\n"
	}
	return newHarness(t, cfg, map[string]fasthttp.RequestHandler{
		"10.0.0.1:80": benchUpstream,
		"10.0.0.2:80": benchUpstream,
	})
}

var benchSink atomic.Int64

// BenchmarkProxy measures whole proxied requests over in-memory listeners:
// client, gateway and upstream all run in this process, so ns/op includes
// all three. "direct" is the client calling the upstream without the gateway.
func BenchmarkProxy(b *testing.B) {
	cases := []struct {
		name, uri, method string
		body              []byte
	}{
		{"get-params", "http://gw.local/api/users/42", "GET", nil},
		{"post-1KiB", "http://gw.local/api/orders/new", "POST", make1K()},
		{"get-16KiB", "http://gw.local/static/a.bin", "GET", nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := benchHarness(b)
			runClients(b, h.client, c.uri, c.method, c.body)
		})
	}
	b.Run("get-params-access-log", func(b *testing.B) {
		h := benchHarness(b, "access_log: {path: /dev/null}")
		runClients(b, h.client, cases[0].uri, "GET", nil)
	})
	b.Run("direct", func(b *testing.B) {
		ln := fasthttputil.NewInmemoryListener()
		srv := &fasthttp.Server{Handler: benchUpstream}
		go srv.Serve(ln)     //nolint:errcheck
		defer srv.Shutdown() //nolint:errcheck
		c := &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
		runClients(b, c, "http://up.local/users/42", "GET", nil)
	})
}

func runClients(b *testing.B, c *fasthttp.Client, uri, method string, body []byte) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		n := 0
		for pb.Next() {
			req.SetRequestURI(uri)
			req.Header.SetMethod(method)
			req.SetBodyRaw(body)
			if err := c.Do(req, resp); err != nil {
				b.Fatalf("%s %s: %s", method, uri, err)
			}
			n += len(resp.Body())
		}
		benchSink.Add(int64(n))
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	})
}
