package headers

import (
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
	"fastgate/core/coretest"
)

// respHeaders renders resp's headers but Date, Content-Length,
// Content-Type, X-Request-Id and Server, sorted, as "Name: value" lines.
func respHeaders(resp *fasthttp.Response) string {
	var lines []string
	for k, v := range resp.Header.All() {
		switch string(k) {
		case "Date", "Content-Length", "Content-Type", "X-Request-Id", "Server":
			continue
		}
		lines = append(lines, string(k)+": "+string(v))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// sentHeaders returns the upstream's echo of the request headers but
// Host, X-Forwarded-*, X-Real-Ip, X-Request-Id and X-Up-Set, sorted.
func sentHeaders(resp *fasthttp.Response) string {
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(resp.Body())), "\n") {
		name, _, _ := strings.Cut(l, ":")
		switch {
		case name == "Host", strings.HasPrefix(name, "X-Forwarded-"), name == "X-Real-Ip", name == "X-Request-Id",
			name == "X-Up-Set", name == "Content-Length", name == "User-Agent", name == "":
			continue
		}
		lines = append(lines, l)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func TestSecurity(t *testing.T) {
	f := func(cfg, upSet string, status int, want string) {
		t.Helper()
		h := newHarness(t, cfg)
		var hs []string
		if upSet != "" {
			hs = append(hs, "X-Up-Set: "+upSet)
		}
		resp := h.g.GetFrom("192.0.2.1", "/x", hs...)
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != status {
			t.Fatalf("%s: status got %d; want %d", cfg, resp.StatusCode(), status)
		}
		if got := respHeaders(resp); got != want {
			t.Fatalf("%s (upstream sets %q): headers got\n%s\nwant\n%s", cfg, upSet, got, want)
		}
	}
	route := "routes: [{upstream: users}]\n"
	// defaults: nosniff; HSTS only on TLS
	f(route, "", 200, "X-Content-Type-Options: nosniff")
	all := `security_headers:
  frame_options: deny
  referrer_policy: strict-origin-when-cross-origin
  content_security_policy: "default-src 'self'"
  set: {Permissions-Policy: "camera=()", Cross-Origin-Opener-Policy: same-origin}
`
	allWant := strings.Join([]string{
		"Content-Security-Policy: default-src 'self'",
		"Cross-Origin-Opener-Policy: same-origin",
		"Permissions-Policy: camera=()",
		"Referrer-Policy: strict-origin-when-cross-origin",
		"X-Content-Type-Options: nosniff",
		"X-Frame-Options: DENY"}, "\n")
	f(all+route, "", 200, allWant)
	// the upstream's own value is kept, unless override
	f(all+route, "X-Frame-Options=SAMEORIGIN", 200, strings.Replace(allWant, "DENY", "SAMEORIGIN", 1))
	f(all+"  override: true\n"+route, "X-Frame-Options=SAMEORIGIN", 200, allWant)
	// a later filter's 403 is marked too
	f(all+"ip: {deny: [192.0.2.0/24]}\n"+route, "", 403, allWant)
	// off
	f("security_headers: {off: true}\n"+route, "", 200, "")
	f("security_headers: {content_type_options: \"off\"}\n"+route, "", 200, "")
}

// TestSecurityTLS checks that HSTS is sent on TLS requests only.
func TestSecurityTLS(t *testing.T) {
	c := coretest.Config(t, upstreamBase+"routes: [{upstream: users}]")
	fl, err := Security{}.Build(envFor(t, c))
	if err != nil {
		t.Fatal(err)
	}
	f := fl.(*SecurityFilter)
	if len(f.tls) != 1 || string(f.tls[0].name) != "Strict-Transport-Security" || string(f.tls[0].value) != config.DefaultHSTS {
		t.Fatalf("TLS-only headers got %+v; want Strict-Transport-Security: %s", f.tls, config.DefaultHSTS)
	}
	var ctx fasthttp.RequestCtx
	f.After(&ctx, nil)
	if v := ctx.Response.Header.Peek("Strict-Transport-Security"); v != nil {
		t.Fatalf("plain HTTP: Strict-Transport-Security got %q; want none", v)
	}
}

func TestTransforms(t *testing.T) {
	h := newHarness(t, `
server: {trusted_proxies: ["10.9.0.0/16"]}
routes:
  - name: users
    match: {path: "/users/{id}"}
    upstream: users
    headers:
      request:
        remove: [X-Debug, "X-Internal-*"]
        rename: {X-Old: X-New}
        set: {X-User-Id: "u-{id}", X-Client: "{client_ip}", X-Route: "{route}", X-Lit: "{{x}"}
        add: {X-Tag: "gw"}
      response:
        remove: ["X-Gw-*", Server]
        rename: {X-Up-Total: X-Total}
        set: {X-Served-By: "gw {route} for {id}"}
        add: {Cache-Control: "no-transform"}
`)
	resp := h.g.GetFrom("10.9.0.1", "/users/42", "X-Debug: 1", "X-Internal-A: a", "x-internal-b: b", "X-Old: o1", "X-Old: o2",
		"X-User-Id: forged", "X-Tag: client", "X-Keep: k", "X-Forwarded-For: 192.0.2.9",
		"X-Up-Set: X-Gw-Secret=s;x-gw-trace=t;X-Up-Total=7;Cache-Control=private;X-Keep=k")
	defer fasthttp.ReleaseResponse(resp)
	if resp.StatusCode() != 200 {
		t.Fatalf("status got %d; want 200", resp.StatusCode())
	}
	wantSent := strings.Join([]string{
		"X-Client: 192.0.2.9",
		"X-Keep: k",
		"X-Lit: {x}",
		"X-New: o1, o2",
		"X-Route: users",
		"X-Tag: client",
		"X-Tag: gw",
		"X-User-Id: u-42",
	}, "\n")
	if got := sentHeaders(resp); got != wantSent {
		t.Fatalf("upstream got headers\n%s\nwant\n%s", got, wantSent)
	}
	wantResp := strings.Join([]string{
		"Cache-Control: no-transform",
		"Cache-Control: private",
		"X-Content-Type-Options: nosniff",
		"X-Keep: k",
		"X-Served-By: gw users for 42",
		"X-Total: 7",
	}, "\n")
	if got := respHeaders(resp); got != wantResp {
		t.Fatalf("client got headers\n%s\nwant\n%s", got, wantResp)
	}
}

// TestTransformParamControlBytes checks that a decoded path parameter
// can't put CR or LF into a header.
func TestTransformParamControlBytes(t *testing.T) {
	h := newHarness(t, `
routes:
  - match: {path: "/users/{id}"}
    upstream: users
    headers: {request: {set: {X-User-Id: "{id}"}}, response: {set: {X-Id: "{id}"}}}
`)
	resp := h.g.GetFrom("192.0.2.1", "/users/a%0d%0aX-Evil:%201")
	defer fasthttp.ReleaseResponse(resp)
	if got, want := string(resp.Header.Peek("X-Id")), "a%0D%0AX-Evil: 1"; got != want {
		t.Fatalf("X-Id got %q; want %q", got, want)
	}
	if v := resp.Header.Peek("X-Evil"); v != nil {
		t.Fatalf("a header was injected: X-Evil: %q", v)
	}
	if !strings.Contains(string(resp.Body()), "X-User-Id: a%0D%0AX-Evil: 1\n") {
		t.Fatalf("upstream got %q; want X-User-Id with the control bytes encoded", resp.Body())
	}
}

func TestTemplateParse(t *testing.T) {
	f := func(s string, want []config.HeaderPart, wantErr string) {
		t.Helper()
		got, err := config.ParseHeaderTemplate(s, []string{"id", "rest"})
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("ParseHeaderTemplate(%q): error got %v; want one with %q", s, err, wantErr)
			}
			return
		}
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("ParseHeaderTemplate(%q) got %v, %v; want %v", s, got, err, want)
		}
	}
	lit := func(s string) config.HeaderPart { return config.HeaderPart{Value: s} }
	f("", nil, "")
	f("plain", []config.HeaderPart{lit("plain")}, "")
	f("a{id}b", []config.HeaderPart{lit("a"), {Kind: config.PartParam, Value: "id"}, lit("b")}, "")
	f("{client_ip}{request_id}{route}{consumer}", []config.HeaderPart{{Kind: config.PartClientIP}, {Kind: config.PartRequestID},
		{Kind: config.PartRoute}, {Kind: config.PartConsumer}}, "")
	f("{{id}", []config.HeaderPart{lit("{id}")}, "")
	f("a}b", []config.HeaderPart{lit("a}b")}, "")
	f("{{{id}", []config.HeaderPart{lit("{"), {Kind: config.PartParam, Value: "id"}}, "")
	f("{nope}", nil, `unknown placeholder "{nope}"`)
	f("{id", nil, `unclosed "{"`)
}

// TestSecurityUnrouted: the answers given before a route matched (no
// route, 405, a refused malformed request, OPTIONS *) carry the security
// headers too.
func TestSecurityUnrouted(t *testing.T) {
	h := newHarness(t, `
security_headers: {frame_options: DENY}
routes:
  - {upstream: users, match: {path: /only, methods: [GET]}}
`)
	f := func(what string, want int, resp *fasthttp.Response) {
		t.Helper()
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != want || string(resp.Header.Peek("X-Content-Type-Options")) != "nosniff" || string(resp.Header.Peek("X-Frame-Options")) != "DENY" {
			t.Fatalf("%s: got %d, X-Content-Type-Options %q, X-Frame-Options %q; want %d, nosniff, DENY", what, resp.StatusCode(),
				resp.Header.Peek("X-Content-Type-Options"), resp.Header.Peek("X-Frame-Options"), want)
		}
	}
	f("no route", 404, h.g.Do("GET", "http://gw/nowhere"))
	f("405", 405, h.g.Do("POST", "http://gw/only"))
	f("a header name with a space", 400, h.g.Do("GET", "http://gw/only", "X Y: 1"))
	f("TRACE", 405, h.g.Do("TRACE", "http://gw/only"))
}
