package coretest

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// NoAllocs warms do up with 100 calls (pools, buffers, connections), then
// fails the test with "name: got N allocs per request; want 0" unless
// testing.AllocsPerRun(1000, do) is 0. Call it from tests built with
// //go:build !race: the race detector allocates.
func NoAllocs(t testing.TB, name string, do func()) {
	t.Helper()
	for range 100 {
		do()
	}
	if n := testing.AllocsPerRun(1000, do); n != 0 {
		t.Fatalf("%s: got %v allocs per request; want 0", name, n)
	}
}

// NoAllocsPerRequest is NoAllocs over requests sent with c, one request
// and response reused throughout: each run resets the request, lets build
// set it (URI, method, headers), sends it (an error fails the test) and
// hands the response to check.
func NoAllocsPerRequest(t testing.TB, name string, c *fasthttp.Client, build func(*fasthttp.Request), check func(*fasthttp.Response)) {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	NoAllocs(t, name, func() {
		req.Reset()
		build(req)
		if err := c.Do(req, resp); err != nil {
			t.Fatalf("%s: %s", name, err)
		}
		check(resp)
	})
}
