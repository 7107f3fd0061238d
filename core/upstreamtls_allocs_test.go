//go:build !race

package core

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestRequestPathAllocsTLS is the allocation guard over an https target
// on a kept-alive TLS connection. The gateway's own code allocates
// nothing; crypto/tls allocates one 24-byte atLeastReader per record it
// reads (golang/go#53142): one in the gateway reading the response, one
// in the test's upstream reading the request. AllocsPerRun counts both.
func TestRequestPathAllocsTLS(t *testing.T) {
	const cryptoTLS = 2 // golang/go#53142, both ends
	h := newUpstreamHarness(t, benchUpstream, true)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	do := func() {
		req.Reset()
		req.SetRequestURI("http://gw.local/api/users/42")
		if err := h.client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("over TLS: status %d, %v", resp.StatusCode(), err)
		}
	}
	for i := 0; i < 200; i++ {
		do()
	}
	n := testing.AllocsPerRun(1000, do)
	t.Logf("allocations per request over TLS: %v (crypto/tls: %d)", n, cryptoTLS)
	if n > cryptoTLS {
		t.Fatalf("over TLS: got %v allocs per request; want at most %d, crypto/tls's own", n, cryptoTLS)
	}
}
