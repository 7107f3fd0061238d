//go:build !race

package headers

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/coretest"
)

// TestRequestPathAllocs drives whole requests through a real gateway with
// security headers and a request and a response transform (prefix
// removal, rename, placeholders) and asserts the steady state allocates
// nothing.
func TestRequestPathAllocs(t *testing.T) {
	h := newHarness(t, `
security_headers: {frame_options: DENY, set: {Permissions-Policy: "camera=()"}}
routes:
  - name: users
    match: {path: "/users/{id}"}
    upstream: users
    headers:
      request:
        remove: [X-Debug, "X-Internal-*"]
        rename: {X-Old: X-New}
        set: {X-User-Id: "u-{id}", X-Client: "{client_ip}", X-Req: "{request_id}"}
        add: {X-Tag: "{route}"}
      response:
        remove: ["X-Gw-*"]
        rename: {X-Up-Total: X-Total}
        set: {X-Served-By: "gw {route} for {id}"}
        add: {X-Consumer-Name: "{consumer}"}
`)
	coretest.NoAllocsPerRequest(t, "GET /users/42", h.g.ClientFrom("192.0.2.1"), func(req *fasthttp.Request) {
		req.SetRequestURI("http://gw.local/users/42")
		req.Header.Set("X-Debug", "1")
		req.Header.Set("X-Internal-A", "a")
		req.Header.Set("X-Old", "o")
		req.Header.Set("X-Up-Set", "X-Gw-Secret=s;X-Up-Total=7")
	}, func(resp *fasthttp.Response) {
		if resp.StatusCode() != 200 || string(resp.Header.Peek("X-Served-By")) != "gw users for 42" ||
			resp.Header.Peek("X-Gw-Secret") != nil || string(resp.Header.Peek("X-Frame-Options")) != "DENY" {
			t.Fatalf("status %d, headers\n%s", resp.StatusCode(), resp.Header.String())
		}
	})
}
