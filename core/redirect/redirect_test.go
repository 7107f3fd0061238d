package redirect_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
	"fastgate/core/redirect"
)

const redirectConfig = `
upstreams:
  users: {targets: [{url: "http://10.0.0.1:80"}]}
routes:
  - name: old-users
    match: {path: "/old/users/{id}"}
    redirect: {url: "https://api.example.com/v2/users/{id}", status: 308, keep_query: true}
  - name: search
    match: {path: "/s/{q}"}
    redirect: {url: "/search?q={q}&src=old", keep_query: true}
  - name: docs
    match: {path: "/docs/{rest:*}"}
    redirect: {url: "/manual/{rest}"}
  - name: api
    match: {path: /api}
    upstream: users
`

func TestRedirect(t *testing.T) {
	gw := coretest.Start(t, redirectConfig, core.Options{Terminals: []core.TerminalBuilder{redirect.Builder{}}}, nil)
	f := func(uri string, status int, location string) {
		t.Helper()
		resp := gw.Do("GET", uri)
		defer fasthttp.ReleaseResponse(resp)
		if got := string(resp.Header.Peek("Location")); resp.StatusCode() != status || got != location {
			t.Fatalf("GET %s: got %d Location %q; want %d %q", uri, resp.StatusCode(), got, status, location)
		}
	}
	f("http://gw/old/users/42", 308, "https://api.example.com/v2/users/42")
	f("http://gw/old/users/42?fields=name&x=1", 308, "https://api.example.com/v2/users/42?fields=name&x=1")
	f("http://gw/old/users/a%20b", 308, "https://api.example.com/v2/users/a%20b")
	f("http://gw/s/a%26b%3Dc", 302, "/search?q=a%26b%3Dc&src=old")
	f("http://gw/s/x?page=2", 302, "/search?q=x&src=old&page=2")
	f("http://gw/docs/guide/intro", 302, "/manual/guide/intro")
	f("http://gw/docs/a?drop=me", 302, "/manual/a")
}
