package cache

import (
	"testing"
)

func TestControlParse(t *testing.T) {
	f := func(v string, want control) {
		t.Helper()
		var c control
		c.reset()
		c.parse([]byte(v))
		if c != want {
			t.Fatalf("parse(%q) got %+v; want %+v", v, c, want)
		}
	}
	none := control{maxAge: -1, sMaxAge: -1, swr: -1, sie: -1}
	f("", none)
	with := func(m func(*control)) control { c := none; m(&c); return c }
	f("max-age=60", with(func(c *control) { c.maxAge = 60 }))
	f(` Max-Age = "60" , S-MAXAGE=10,public`, with(func(c *control) { c.maxAge, c.sMaxAge = 60, 10 }))
	f("max-age=abc", with(func(c *control) { c.maxAge = 0 }))
	f("max-age=", with(func(c *control) { c.maxAge = 0 }))
	f("max-age=99999999999999999999", with(func(c *control) { c.maxAge = maxDelta }))
	f("stale-while-revalidate=30, stale-if-error=x", with(func(c *control) { c.swr = 30 }))
	f("stale-if-error=86400", with(func(c *control) { c.sie = 86400 }))
	f(`no-store, private="Set-Cookie, X-A", no-cache`, with(func(c *control) { c.noStore, c.private, c.noCache = true, true, true }))
	f(`private="a,max-age=5"`, with(func(c *control) { c.private = true }))
	f("must-revalidate", with(func(c *control) { c.mustRevalidate = true }))
	f("proxy-revalidate,,", with(func(c *control) { c.mustRevalidate = true }))
	f("no-storex, nostore, max-agex=1", none)
}

func FuzzControlParse(f *testing.F) {
	for _, s := range []string{"max-age=60, s-maxage=10", `private="a,b", no-cache`, "stale-while-revalidate=1,stale-if-error=2",
		`"\`, "max-age=\"", ",,,", "must-revalidate"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var c control
		c.reset()
		c.parse(v)
		for _, d := range []int64{c.maxAge, c.sMaxAge, c.swr, c.sie} {
			if d < -1 || d > maxDelta {
				t.Fatalf("parse(%q): a delta out of range: %+v", v, c)
			}
		}
	})
}

func TestWeakEqual(t *testing.T) {
	f := func(a, b string, want bool) {
		t.Helper()
		if got := weakEqual([]byte(a), []byte(b)); got != want {
			t.Fatalf("weakEqual(%q, %q) got %v; want %v", a, b, got, want)
		}
	}
	f(`"a"`, `"a"`, true)
	f(`W/"a"`, `"a"`, true)
	f(`W/"a"`, `W/"a"`, true)
	f(`"a"`, `"b"`, false)
	f(``, ``, false)
}
