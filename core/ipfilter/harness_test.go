package ipfilter

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
)

// harness runs a real core.Gateway (coretest) with this package's Builder
// and an in-memory upstream at 10.0.0.1:80 answering 200 "ok".
type harness struct {
	t       testing.TB
	g       *coretest.Gateway
	clients map[string]*fasthttp.Client
}

const upstreamBase = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
`

func newHarness(t testing.TB, cfg string) *harness {
	t.Helper()
	up := func(ctx *fasthttp.RequestCtx) { ctx.WriteString("ok") } //nolint:errcheck
	g := coretest.Start(t, upstreamBase+cfg, core.Options{Filters: []core.FilterBuilder{Builder{}}},
		map[string]fasthttp.RequestHandler{"10.0.0.1:80": up})
	return &harness{t: t, g: g, clients: map[string]*fasthttp.Client{}}
}

func (h *harness) client(peer string) *fasthttp.Client {
	if c := h.clients[peer]; c != nil {
		return c
	}
	c := h.g.ClientFrom(peer)
	h.clients[peer] = c
	return c
}

// get sends GET uri from peer with "Name: value" headers; the caller
// releases the response.
func (h *harness) get(peer, uri string, headers ...string) *fasthttp.Response {
	h.t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://gw.local" + uri)
	for _, hv := range headers {
		k, v, _ := strings.Cut(hv, ":")
		req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	resp := fasthttp.AcquireResponse()
	if err := h.client(peer).DoTimeout(req, resp, 10*time.Second); err != nil {
		h.t.Fatalf("GET %s from %s: %s", uri, peer, err)
	}
	return resp
}

func (h *harness) status(peer, uri string, headers ...string) int {
	h.t.Helper()
	resp := h.get(peer, uri, headers...)
	defer fasthttp.ReleaseResponse(resp)
	return resp.StatusCode()
}
