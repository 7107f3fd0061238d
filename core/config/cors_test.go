package config

import (
	"slices"
	"testing"
)

func TestCORSErrors(t *testing.T) {
	f := checkErrors
	f(t, `routes: [{upstream: users, cors: {allow_origins: ["https://app.example.com", "https://*.example.org", "http://localhost:3000", "null"],
  allow_headers: [Content-Type], expose_headers: [X-Total], allow_credentials: true, max_age: 10m}}]`)
	f(t, `routes: [{upstream: users, cors: {allow_origins: ["https://a.example.com", "htp://x"]}}]`,
		`routes[0].cors.allow_origins[1]: "htp://x" is not an origin: the scheme "htp" is not http or https; write "https://app.example.com" or "https://*.example.com"`)
	f(t, `routes: [{upstream: users, cors: {allow_origins: ["https://a.example.com/", "a.example.com", "https://*.com", "https://a.example.com:0", "https://x.*.com"]}}]`,
		`routes[0].cors.allow_origins[0]: "https://a.example.com/" is not an origin: an origin has no path, query or trailing "/"; write "https://app.example.com" or "https://*.example.com"`,
		`routes[0].cors.allow_origins[1]: "a.example.com" is not an origin: it needs a scheme, "https://" or "http://"; write "https://app.example.com" or "https://*.example.com"`,
		`routes[0].cors.allow_origins[2]: "https://*.com" is not an origin: a wildcard is "*." before a domain of at least two labels, such as "https://*.example.com"; write "https://app.example.com" or "https://*.example.com"`,
		`routes[0].cors.allow_origins[3]: "https://a.example.com:0" is not an origin: the port "0" is not a number 1-65535; write "https://app.example.com" or "https://*.example.com"`,
		`routes[0].cors.allow_origins[4]: "https://x.*.com" is not an origin: the host "x.*.com" is not a host name; write "https://app.example.com" or "https://*.example.com"`)
	f(t, `routes: [{upstream: users, cors: {allow_origins: ["*"], allow_credentials: true}}]`,
		`routes[0].cors.allow_origins[0]: "*" with allow_credentials: true would let every site make credentialed requests (cookies, Authorization) and read the answers; list the origins that may, such as "https://app.example.com"`)
	f(t, `routes: [{upstream: users, cors: {allow_origins: ["https://a.example.com", "*", "HTTPS://A.example.com"]}}]`,
		`routes[0].cors.allow_origins[1]: "*" admits every origin; keep either "*" alone or the list of origins`,
		`routes[0].cors.allow_origins[2]: "HTTPS://A.example.com" is the same origin as allow_origins[0]; keep one`)
	f(t, `routes: [{upstream: users, cors: {allow_origins: []}}]`,
		`routes[0].cors.allow_origins: must list at least one origin, such as ["https://app.example.com"], or "*" for any`)
	f(t, `routes: [{upstream: users, cors: {allow_origins: ["https://a.example.com"], allow_credentials: true, expose_headers: ["*"], allow_methods: [get, "*"], allow_headers: ["X A"], max_age: 1500ms}}]`,
		`routes[0].cors.allow_methods[0]: "get": methods are case-sensitive; write "GET"`,
		`routes[0].cors.allow_methods[1]: "*" allows any method; keep either "*" alone or the list`,
		"routes[0].cors.allow_headers[0]: \"X A\" is not a header name: use letters, digits and !#$%&'*+-.^_`|~",
		`routes[0].cors.expose_headers: "*" is literal with allow_credentials (Fetch standard): browsers would expose only a header named "*"; list the headers to expose`,
		`routes[0].cors.max_age: Access-Control-Max-Age is whole seconds; write 1s or 2s, got 1.5s`)
}

func TestCORSDefaults(t *testing.T) {
	f := func(route string, want []string) {
		t.Helper()
		c, err := ParseChecked([]byte(validBase+"routes: ["+route+"]"), "yaml", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Routes[0].CORS.AllowMethods; !slices.Equal(got, want) {
			t.Fatalf("%s: allow_methods got %v; want %v", route, got, want)
		}
	}
	f(`{upstream: users, cors: {allow_origins: ["*"]}}`, []string{"GET", "HEAD", "POST"})
	f(`{upstream: users, match: {methods: [PUT]}, cors: {allow_origins: ["*"]}}`, []string{"PUT"})
	f(`{upstream: users, cors: {allow_origins: ["*"], allow_methods: [DELETE]}}`, []string{"DELETE"})
}
