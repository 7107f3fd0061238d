package cors

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// headersOf renders the CORS and Vary headers of resp, sorted by name, as
// "Name: value" lines, for comparison.
func headersOf(resp *fasthttp.Response) string {
	var lines []string
	for k, v := range resp.Header.All() {
		name := string(k)
		if strings.HasPrefix(name, "Access-Control-") || name == "Vary" {
			lines = append(lines, name+": "+string(v))
		}
	}
	for i := 1; i < len(lines); i++ { // insertion sort: few lines
		for j := i; j > 0 && lines[j] < lines[j-1]; j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
	return strings.Join(lines, "\n")
}

const corsConfig = `
routes:
  - name: creds
    match: {path: /creds, methods: [GET, PUT]}
    upstream: users
    cors:
      allow_origins: ["https://app.example.com", "https://*.example.org", "http://localhost:3000"]
      allow_headers: [Content-Type, X-Trace]
      expose_headers: [X-Total]
      allow_credentials: true
      max_age: 10m
      allow_private_network: true
  - name: open
    match: {path: /open}
    upstream: users
    cors: {allow_origins: ["*"], allow_methods: ["*"], allow_headers: ["*"]}
  - name: reflect
    match: {path: /reflect}
    upstream: users
    cors: {allow_origins: ["https://app.example.com"], allow_methods: ["*"], allow_headers: ["*"], allow_credentials: true}
  - name: plain
    match: {path: /plain}
    upstream: users
    cors: {allow_origins: ["https://app.example.com"]}
`

func TestPreflight(t *testing.T) {
	h := newHarness(t, corsConfig)
	f := func(path string, reqHeaders []string, wantStatus int, want string) {
		t.Helper()
		before := h.hits.Load()
		resp := h.do("OPTIONS", path, reqHeaders...)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != wantStatus {
			t.Fatalf("OPTIONS %s %v: status got %d; want %d; body %s", path, reqHeaders, resp.StatusCode(), wantStatus, resp.Body())
		}
		if got := headersOf(resp); got != want {
			t.Fatalf("OPTIONS %s %v: headers got\n%s\nwant\n%s", path, reqHeaders, got, want)
		}
		if n := h.hits.Load() - before; n != 0 {
			t.Fatalf("OPTIONS %s %v: the upstream got %d requests; want 0", path, reqHeaders, n)
		}
	}
	vary := "Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	f("/creds", []string{"Origin: https://app.example.com", "Access-Control-Request-Method: PUT",
		"Access-Control-Request-Headers: content-type, x-trace"}, 204, strings.Join([]string{
		"Access-Control-Allow-Credentials: true",
		"Access-Control-Allow-Headers: Content-Type, X-Trace",
		"Access-Control-Allow-Methods: GET, PUT",
		"Access-Control-Allow-Origin: https://app.example.com",
		"Access-Control-Max-Age: 600",
		vary}, "\n"))
	// wildcard subdomain at any depth; private network asked and allowed
	f("/creds", []string{"Origin: https://a.b.example.org", "Access-Control-Request-Method: GET",
		"Access-Control-Request-Private-Network: true"}, 204, strings.Join([]string{
		"Access-Control-Allow-Credentials: true",
		"Access-Control-Allow-Headers: Content-Type, X-Trace",
		"Access-Control-Allow-Methods: GET, PUT",
		"Access-Control-Allow-Origin: https://a.b.example.org",
		"Access-Control-Allow-Private-Network: true",
		"Access-Control-Max-Age: 600",
		vary}, "\n"))
	// origin, method or headers not allowed: 403 without CORS headers
	f("/creds", []string{"Origin: https://example.org", "Access-Control-Request-Method: GET"}, 403, "")
	f("/creds", []string{"Origin: https://evil.com", "Access-Control-Request-Method: GET"}, 403, "")
	f("/creds", []string{"Origin: http://app.example.com", "Access-Control-Request-Method: GET"}, 403, "")
	f("/creds", []string{"Origin: http://localhost:3001", "Access-Control-Request-Method: GET"}, 403, "")
	f("/creds", []string{"Origin: null", "Access-Control-Request-Method: GET"}, 403, "")
	// a method the route does not take: the router's 405, no CORS headers
	f("/creds", []string{"Origin: https://app.example.com", "Access-Control-Request-Method: DELETE"}, 405, "")
	f("/creds", []string{"Origin: https://app.example.com", "Access-Control-Request-Method: GET",
		"Access-Control-Request-Headers: x-other"}, 403, "")
	// case-insensitive scheme and host, exact port
	f("/creds", []string{"Origin: HTTP://LocalHost:3000", "Access-Control-Request-Method: GET"}, 204, strings.Join([]string{
		"Access-Control-Allow-Credentials: true",
		"Access-Control-Allow-Headers: Content-Type, X-Trace",
		"Access-Control-Allow-Methods: GET, PUT",
		"Access-Control-Allow-Origin: HTTP://LocalHost:3000",
		"Access-Control-Max-Age: 600",
		vary}, "\n"))
	// "*" without credentials
	f("/open", []string{"Origin: https://x.test", "Access-Control-Request-Method: PATCH",
		"Access-Control-Request-Headers: x-a"}, 204, strings.Join([]string{
		"Access-Control-Allow-Headers: *",
		"Access-Control-Allow-Methods: *",
		"Access-Control-Allow-Origin: *",
		vary}, "\n"))
	// "*" is literal with credentials: the method and headers are reflected
	f("/reflect", []string{"Origin: https://app.example.com", "Access-Control-Request-Method: PATCH",
		"Access-Control-Request-Headers: x-a, x-b"}, 204, strings.Join([]string{
		"Access-Control-Allow-Credentials: true",
		"Access-Control-Allow-Headers: x-a, x-b",
		"Access-Control-Allow-Methods: PATCH",
		"Access-Control-Allow-Origin: https://app.example.com",
		vary}, "\n"))
	// defaults: GET, HEAD, POST; requested headers reflected; no max age
	f("/plain", []string{"Origin: https://app.example.com", "Access-Control-Request-Method: POST",
		"Access-Control-Request-Headers: content-type"}, 204, strings.Join([]string{
		"Access-Control-Allow-Headers: content-type",
		"Access-Control-Allow-Methods: GET, HEAD, POST",
		"Access-Control-Allow-Origin: https://app.example.com",
		vary}, "\n"))
	f("/plain", []string{"Origin: https://app.example.com", "Access-Control-Request-Method: PUT"}, 403, "")
	// private network asked but not allowed: no such header
	f("/plain", []string{"Origin: https://app.example.com", "Access-Control-Request-Method: GET",
		"Access-Control-Request-Private-Network: true"}, 204, strings.Join([]string{
		"Access-Control-Allow-Methods: GET, HEAD, POST",
		"Access-Control-Allow-Origin: https://app.example.com",
		vary}, "\n"))
}

func TestActual(t *testing.T) {
	h := newHarness(t, corsConfig)
	f := func(method, path string, reqHeaders []string, want string) {
		t.Helper()
		before := h.hits.Load()
		resp := h.do(method, path, reqHeaders...)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != 200 {
			t.Fatalf("%s %s %v: status got %d; want 200; body %s", method, path, reqHeaders, resp.StatusCode(), resp.Body())
		}
		if got := headersOf(resp); got != want {
			t.Fatalf("%s %s %v: headers got\n%s\nwant\n%s", method, path, reqHeaders, got, want)
		}
		if n := h.hits.Load() - before; n != 1 {
			t.Fatalf("%s %s %v: the upstream got %d requests; want 1", method, path, reqHeaders, n)
		}
	}
	f("GET", "/creds", []string{"Origin: https://app.example.com"}, strings.Join([]string{
		"Access-Control-Allow-Credentials: true",
		"Access-Control-Allow-Origin: https://app.example.com",
		"Access-Control-Expose-Headers: X-Total",
		"Vary: Origin"}, "\n"))
	// disallowed origin: served, no CORS headers, Vary still
	f("GET", "/creds", []string{"Origin: https://evil.com"}, "Vary: Origin")
	// no Origin: untouched but for Vary
	f("GET", "/creds", nil, "Vary: Origin")
	// merged into the upstream's Vary, never twice
	f("GET", "/creds", []string{"Origin: https://evil.com", "X-Up-Vary: Accept-Encoding"}, "Vary: Accept-Encoding, Origin")
	f("GET", "/creds", []string{"X-Up-Vary: accept-encoding, origin"}, "Vary: accept-encoding, origin")
	f("GET", "/creds", []string{"X-Up-Vary: *"}, "Vary: *")
	f("GET", "/creds", []string{"X-Up-Vary: Accept", "X-Up-Vary: Accept-Language"},
		"Vary: Accept\nVary: Accept-Language\nVary: Origin")
	f("GET", "/open", []string{"Origin: https://x.test"}, "Access-Control-Allow-Origin: *\nVary: Origin")
	// OPTIONS without Access-Control-Request-Method is not a preflight
	f("OPTIONS", "/open", []string{"Origin: https://x.test"}, "Access-Control-Allow-Origin: *\nVary: Origin")
}

func TestOriginAllowed(t *testing.T) {
	f := func(origins []string, origin string, want bool) {
		t.Helper()
		fl := mustCompile(t, origins)
		if got := fl.OriginAllowed([]byte(origin)); got != want {
			t.Fatalf("%v allows %q: got %v; want %v", origins, origin, got, want)
		}
	}
	wild := []string{"https://*.example.com"}
	f(wild, "https://a.example.com", true)
	f(wild, "https://a.b.c.example.com", true)
	f(wild, "https://A.Example.COM", true)
	f(wild, "https://example.com", false)
	f(wild, "https://.example.com", false)
	f(wild, "https://a..example.com", false)
	f(wild, "https://evilexample.com", false)
	f(wild, "https://a.example.com.evil.com", false)
	f(wild, "https://a.example.com:443", false)
	f(wild, "http://a.example.com", false)
	f(wild, "null", false)
	f(wild, "https://a.example.com/", false)
	f(wild, "https://a_b.example.com", false)
	f([]string{"null"}, "null", true)
	f([]string{"https://[::1]:8443"}, "https://[::1]:8443", true)
	f([]string{"https://[::1]:8443"}, "https://[::1]", false)
	f([]string{"http://localhost:3000"}, "http://localhost:3000", true)
	f([]string{"http://localhost:3000"}, "http://localhost:03000", false)
	f([]string{"http://localhost:3000"}, "http://localhost", false)
	f([]string{"*"}, "null", true)
}
