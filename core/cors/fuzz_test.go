package cors

import (
	"bytes"
	"testing"

	"fastgate/core/config"
)

func mustCompile(t testing.TB, origins []string) *Filter {
	t.Helper()
	f, err := compile(&config.CORS{AllowOrigins: origins})
	if err != nil {
		t.Fatalf("compile(%v): %s", origins, err)
	}
	return f
}

// FuzzOrigin checks the origin parser and matcher: no panic; a match is a
// well-formed origin; matching ignores the case of scheme and host; "null"
// never matches a wildcard; a config entry that parses matches itself.
func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example.com", "http://localhost:3000", "null", "https://[::1]:8443",
		"https://example.com", "https://a..example.com", "HTTPS://A.EXAMPLE.COM", "https://a.example.com:99999", "x://", ""} {
		f.Add(s)
	}
	m := mustCompile(f, []string{"https://*.example.com", "http://localhost:3000", "https://[::1]:8443"})
	f.Fuzz(func(t *testing.T, s string) {
		o := []byte(s)
		ok := m.OriginAllowed(o)
		if ok {
			if _, _, _, parsed := parseOrigin(o); !parsed {
				t.Fatalf("%q matched but does not parse", s)
			}
			if !m.OriginAllowed(bytes.ToUpper(o)) || !m.OriginAllowed(bytes.ToLower(o)) {
				t.Fatalf("%q matched, but not in another case", s)
			}
		}
		if s == "null" && ok {
			t.Fatalf(`"null" matched a wildcard`)
		}
		if c, err := config.ParseCORSOrigin(s); err == nil && !c.Any && !c.Null && !c.Wildcard {
			if !mustCompile(t, []string{s}).OriginAllowed(o) {
				t.Fatalf("entry %q does not match itself", s)
			}
		}
	})
}
