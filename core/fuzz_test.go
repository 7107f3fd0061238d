package core

import (
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzRouteMatch matches arbitrary paths and methods against the routing
// table and checks the invariants of a match: parameters are spans of the
// path, one-segment parameters hold no '/', and the upstream request URI is
// a well-formed origin-form URI.
func FuzzRouteMatch(f *testing.F) {
	for _, s := range []string{"/api/users/7", "/api/orders/a/b", "/search", "/", "//", "/api/users/", "/api/users/%2F", "/a b/\x00"} {
		f.Add(s, "GET", "gw.local", "v=2")
	}
	snap := compileBuilt(f, routingConfig)
	f.Fuzz(func(t *testing.T, path, method, host, query string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(method)
		ctx.Request.SetRequestURI("/x?" + query)
		x := &exchange{ctx: &ctx, method: methodBit([]byte(method))}
		x.host = appendLowerHost(nil, []byte(host))
		p := []byte(path)
		x.path = p
		r := snap.router.match(x, x.host, p)
		if r == nil {
			return
		}
		if x.nparams != len(r.params) {
			t.Fatalf("path %q route %s: %d param spans; want %d", path, r.name, x.nparams, len(r.params))
		}
		for i := 0; i < x.nparams; i++ {
			s := x.params[i]
			if s.start < 0 || s.end > len(p) || s.start > s.end {
				t.Fatalf("path %q: param %d span %v out of bounds", path, i, s)
			}
		}
		uri := r.terminal.(*proxy).rewrite.appendRequestURI(nil, x, []byte("q=1"))
		if len(uri) == 0 || uri[0] != '/' {
			t.Fatalf("path %q: upstream URI %q does not start with '/'", path, uri)
		}
		if i := bytes.IndexByte(uri, '?'); i >= 0 {
			uri = uri[:i]
		}
		for _, c := range uri {
			if !pathSafe[c] && c != '%' {
				t.Fatalf("path %q: upstream path %q has unescaped byte %q", path, uri, c)
			}
		}
	})
}

// FuzzClientIP walks arbitrary X-Forwarded-For values.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4, 10.0.0.1", "garbage", "[::1]:80, ,", ",,,"} {
		f.Add(s)
	}
	snap := &Snapshot{}
	var err error
	if snap.trusted, err = parsePrefixes([]string{"10.0.0.0/8", "127.0.0.1"}); err != nil {
		f.Fatal(err)
	}
	peer := mustAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, xff string) {
		ip := snap.clientIP([]byte(xff), peer)
		if !ip.IsValid() {
			t.Fatalf("X-Forwarded-For %q: invalid client IP", xff)
		}
		if ip != peer && !bytes.Contains([]byte(xff), []byte(ip.String())) && !bytes.Contains([]byte(xff), []byte(ip.StringExpanded())) {
			// IPv4-mapped and other spellings parse to the same address;
			// the client must come from the header or be the peer.
			if _, ok := parseAnyEntry(xff, ip); !ok {
				t.Fatalf("X-Forwarded-For %q: client %s is neither the peer nor an entry", xff, ip)
			}
		}
	})
}

func TestAppendQuotedPathRoundTrip(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(AppendQuotedPath(nil, []byte(in))); got != want {
			t.Fatalf("AppendQuotedPath(%q): got %q; want %q", in, got, want)
		}
	}
	f("/users/7", "/users/7")
	f("/a b", "/a%20b")
	f("/100%", "/100%25")
	f("/q?x#y", "/q%3Fx%23y")
	f("/é", "/%C3%A9")
	f("/a:b@c;d=e", "/a:b@c;d=e")
}

// compileBuilt compiles a snapshot with its terminals built, as a gateway
// does (Compile only validates them).
func compileBuilt(t testing.TB, cfg string) *Snapshot {
	t.Helper()
	m := newMetrics(func() float64 { return 0 })
	snap, err := compile(mustConfig(t, cfg), &Options{}, nil, &instances{m: m}, m, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(snap.Close)
	return snap
}
