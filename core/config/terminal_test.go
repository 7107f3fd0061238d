package config

import (
	"testing"
)

func TestValidateTerminals(t *testing.T) {
	f := func(routes string, want ...string) { t.Helper(); wantProblems(t, routes, want...) }
	f(`routes:
  - {match: {path: /health}, static: {body: ok}}
  - {match: {path: "/old/{id}"}, redirect: {url: "https://new.example.com/u/{id}", status: 308, keep_query: true}}
  - {match: {path: /u}, upstream: users}`)
	f(`routes: [{upstream: users, static: {}, redirect: {url: /x}}]`,
		`routes[0]: proxy and static and redirect exclude each other: a route has one terminal; split it into routes`)
	f(`routes: [{static: {status: 700, headers: {"bad name": x, X-Ok: "a\nb"}}, timeout: 1s, rewrite: {path: /x}}]`,
		`routes[0].static.status: must be 100-599, got 700`,
		`routes[0].static.headers.X-Ok: the value must not contain CR, LF or NUL`,
		`routes[0].static.headers["bad name"]: "bad name" is not a header name: use letters, digits and !#$%&'*+-.^_`+"`"+`|~`,
		`routes[0].rewrite: only applies to a route with an upstream; this route is static`,
		`routes[0].timeout: only applies to a route with an upstream; this route is static`)
	f(`routes:
  - {match: {path: "/a/{id}"}, redirect: {url: "/b/{idd}", status: 200}}
  - {match: {path: /c}, redirect: {}}
  - {match: {path: /d}, redirect: {url: "//evil.example"}}
  - {match: {path: /e}, redirect: {url: "ftp://x"}}`,
		`routes[0].redirect.status: must be 301, 302, 303, 307 or 308, got 200`,
		`routes[0].redirect.url: unknown parameter {idd} (the route's path has: id)`,
		`routes[1].redirect.url: required: the Location, such as "https://new.example.com/users/{id}" or "/v2/users/{id}"`,
		`routes[2].redirect.url: "//evil.example" is a scheme-relative URL; write the scheme ("https://evil.example")`,
		`routes[3].redirect.url: "ftp://x" must be an absolute http(s) URL or start with "/"`)
}

func TestTerminalDefaults(t *testing.T) {
	c := mustParse(t, validBase+`routes: [{static: {body: hi}}, {match: {path: /r}, redirect: {url: /x}}, {match: {path: /e}, static: {}}]`, "yaml")
	c.SetDefaults(nil)
	if s := c.Routes[0].Static; s.Status != 200 || s.ContentType != "text/plain; charset=utf-8" {
		t.Fatalf("static defaults: got %+v", s)
	}
	if s := c.Routes[2].Static; s.Status != 200 || s.ContentType != "" {
		t.Fatalf("empty static defaults: got %+v", s)
	}
	if r := c.Routes[1].Redirect; r.Status != 302 {
		t.Fatalf("redirect default status: got %d; want 302", r.Status)
	}
	if got := c.Routes[1].Terminal(); got != TerminalRedirect {
		t.Fatalf("Terminal: got %q; want %q", got, TerminalRedirect)
	}
}
