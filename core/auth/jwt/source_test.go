package jwt

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

func TestExtractStrip(t *testing.T) {
	f := func(from config.JWTSource, uri string, headers []string, want, wantURI, wantLeft string) {
		t.Helper()
		v := newVerifier(t, &config.JWTIssuer{Algorithms: []string{"HS256"}, Secret: "x", From: from}, Options{})
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.SetRequestURI(uri)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		if got := string(v.Extract(req)); got != want {
			t.Fatalf("%+v %s %q: Extract got %q; want %q", from, uri, headers, got, want)
		}
		v.Strip(req)
		if got := string(req.URI().RequestURI()); got != wantURI {
			t.Fatalf("%+v: after Strip RequestURI got %q; want %q", from, got, wantURI)
		}
		left := string(req.Header.Peek("Authorization")) + "|" + string(req.Header.Peek("X-Token")) + "|" + string(req.Header.Peek("Cookie"))
		if left != wantLeft {
			t.Fatalf("%+v %q: after Strip headers got %q; want %q", from, headers, left, wantLeft)
		}
		if got := v.Extract(req); got != nil {
			t.Fatalf("%+v: Extract after Strip got %q; want nil", from, got)
		}
	}
	def := config.JWTSource{}
	f(def, "/a", []string{"Authorization", "Bearer abc"}, "abc", "/a", "||")
	f(def, "/a", []string{"Authorization", "BEARER   abc  "}, "abc", "/a", "||")
	f(def, "/a", []string{"Authorization", "bearer\tabc"}, "abc", "/a", "||")
	f(def, "/a", []string{"Authorization", "Basic YTpi"}, "", "/a", "Basic YTpi||")
	f(def, "/a", []string{"Authorization", "Bearer"}, "", "/a", "Bearer||")
	f(def, "/a", []string{"Authorization", "Bearer "}, "", "/a", "Bearer ||")
	f(def, "/a", []string{"Authorization", "Bearerabc"}, "", "/a", "Bearerabc||")
	f(def, "/a", nil, "", "/a", "||")
	f(config.JWTSource{Header: "X-Token"}, "/a", []string{"X-Token", "abc", "Authorization", "Bearer x"}, "abc", "/a", "Bearer x||")
	q := config.JWTSource{Query: "access_token"}
	f(q, "/a?x=1&access_token=abc&y=2", nil, "abc", "/a?x=1&y=2", "||")
	f(q, "/a?access_token=", nil, "", "/a?access_token=", "||")
	c := config.JWTSource{Cookie: "jwt"}
	f(c, "/a", []string{"Cookie", "a=1; jwt=abc; b=2"}, "abc", "/a", "||a=1; b=2")
	// header first, then query: Basic credentials stay when the token is
	// in the query
	hq := config.JWTSource{Header: "Authorization", Query: "access_token"}
	f(hq, "/a?access_token=abc", []string{"Authorization", "Basic YTpi"}, "abc", "/a", "Basic YTpi||")
	f(hq, "/a?access_token=q", []string{"Authorization", "Bearer h"}, "h", "/a", "||")
}
