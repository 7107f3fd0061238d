package auth

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestParseBasic(t *testing.T) {
	f := func(h string, wantUser, wantPass string, want outcome) {
		t.Helper()
		var buf basicBuf
		user, pass, o := parseBasic([]byte(h), &buf)
		if o != want || string(user) != wantUser || string(pass) != wantPass {
			t.Fatalf("parseBasic(%q) got %q %q %d; want %q %q %d", h, user, pass, o, wantUser, wantPass, want)
		}
	}
	b64 := base64.StdEncoding.EncodeToString
	f("", "", "", missing)
	f("Bearer abc", "", "", missing)
	f("Basicx", "", "", missing)
	f("Basic", "", "", invalid)
	f("Basic   ", "", "", invalid)
	f("Basic "+b64([]byte("u:p")), "u", "p", succeeded)
	f("bAsIc  "+b64([]byte("u:p:q"))+" ", "u", "p:q", succeeded)
	f("Basic "+b64([]byte(":")), "", "", succeeded) // empty user: no such user
	f("Basic "+b64([]byte("no colon")), "", "", invalid)
	f("Basic "+b64([]byte("u:p"))[:3], "", "", invalid)
	f("Basic ***", "", "", invalid)
	long := bytes.Repeat([]byte("a"), maxBasic-2)
	f("Basic "+b64(append([]byte("u:"), long...)), "u", string(long), succeeded)
	f("Basic "+b64(append([]byte("u:x"), long...)), "", "", invalid)
}

func TestKeySource(t *testing.T) {
	f := func(s keySource, uri string, headers []string, want string) {
		t.Helper()
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(uri)
		for i := 0; i+1 < len(headers); i += 2 {
			ctx.Request.Header.Add(headers[i], headers[i+1])
		}
		if got := s.extract(&ctx); string(got) != want || (got == nil) != (want == "") {
			t.Fatalf("extract(%s %q) got %q; want %q", uri, headers, got, want)
		}
	}
	all := keySource{header: "X-API-Key", query: "api_key", bearer: true}
	f(all, "/", nil, "")
	f(all, "/", []string{"X-API-Key", ""}, "")
	f(all, "/", []string{"X-API-Key", "k"}, "k")
	f(all, "/?api_key=q", []string{"X-API-Key", "k"}, "k")
	f(all, "/?api_key=q%20x", nil, "q x")
	f(all, "/?api_key=", []string{"Authorization", "Bearer b"}, "b")
	f(all, "/", []string{"Authorization", "Basic b"}, "")
	f(all, "/", []string{"Authorization", "Bearer"}, "")
	f(keySource{header: "X-API-Key"}, "/?api_key=q", []string{"Authorization", "Bearer b"}, "")
}

// FuzzBasic checks that parseBasic never panics, returns parts of what it
// decoded, and agrees with encoding/base64 on a well-formed credential.
func FuzzBasic(f *testing.F) {
	f.Add("Basic dTpw")
	f.Add("basic " + base64.StdEncoding.EncodeToString([]byte("user:pa:ss")))
	f.Add("Basic ")
	f.Add("Basic =====")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, h string) {
		var buf basicBuf
		user, pass, o := parseBasic([]byte(h), &buf)
		if o != succeeded {
			if user != nil || pass != nil {
				t.Fatalf("parseBasic(%q): %d with parts %q %q", h, o, user, pass)
			}
			return
		}
		v := credential([]byte(h), schemeBasic)
		dec, err := base64.StdEncoding.DecodeString(string(v))
		if err != nil {
			t.Fatalf("parseBasic(%q) succeeded on what base64 rejects: %s", h, err)
		}
		if want := string(user) + ":" + string(pass); want != string(dec) || bytes.IndexByte(user, ':') >= 0 {
			t.Fatalf("parseBasic(%q) got %q:%q; want the split of %q", h, user, pass, dec)
		}
	})
}

// FuzzBearer checks the Authorization scheme parsing of API keys and
// basic credentials: a credential found is the trimmed rest of the header
// after a case-insensitive scheme.
func FuzzBearer(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer\tabc ")
	f.Add("Bearer")
	f.Add("BEARER  ")
	f.Fuzz(func(t *testing.T, h string) {
		v := bearer([]byte(h))
		if v == nil {
			return
		}
		if len(h) < 7 || !bytes.EqualFold([]byte(h[:7]), []byte("Bearer ")) {
			t.Fatalf("bearer(%q) = %q without the scheme", h, v)
		}
		if want := bytes.Trim([]byte(h[7:]), " \t"); !bytes.Equal(v, want) || len(v) == 0 {
			t.Fatalf("bearer(%q) = %q; want %q", h, v, want)
		}
	})
}

// FuzzAPIKey sends arbitrary headers and query strings through extract
// and strip: no panic, and after strip no key is left to extract.
func FuzzAPIKey(f *testing.F) {
	f.Add("k", "api_key=q&a=1", "Bearer b")
	f.Add("", "api_key=&api_key=2", "bearer  x")
	f.Add("", "a=%zz&api_key=%41", "")
	f.Fuzz(func(t *testing.T, header, query, authz string) {
		s := keySource{header: "X-API-Key", query: "api_key", bearer: true}
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/p")
		ctx.URI().SetQueryString(query)
		ctx.Request.Header.Set("X-API-Key", header)
		ctx.Request.Header.Set("Authorization", authz)
		s.extract(&ctx)
		s.strip(&ctx)
		var again fasthttp.RequestCtx
		ctx.Request.CopyTo(&again.Request)
		again.URI().SetQueryStringBytes(ctx.URI().QueryString())
		if k := s.extract(&again); k != nil {
			t.Fatalf("after strip of %q %q %q: key %q still found", header, query, authz, k)
		}
	})
}
