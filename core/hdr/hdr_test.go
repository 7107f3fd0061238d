package hdr

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func parseRequest(t *testing.T, lines ...string) *fasthttp.RequestHeader {
	t.Helper()
	var h fasthttp.RequestHeader
	raw := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Join(lines, "\r\n") + "\r\n\r\n"
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	return &h
}

// lines returns h's lines but Host, "Name: value" each, in order.
func lines(h Header) []string {
	var out []string
	for k, v := range h.All() {
		if string(k) != "Host" {
			out = append(out, string(k)+": "+string(v))
		}
	}
	return out
}

// order returns the values of name among got, in order.
func order(got []string, name string) string {
	var vs []string
	for _, l := range got {
		if k, v, _ := strings.Cut(l, ": "); k == name {
			vs = append(vs, v)
		}
	}
	return strings.Join(vs, ",")
}

func TestDelKeepsOrder(t *testing.T) {
	for _, c := range []struct {
		name  string
		lines []string
		del   string
		want  map[string]string // name -> its values in order, after Del
	}{
		{"repeated name after the deleted line", []string{"Keep-Alive: 1", "Via: a", "Via: b"}, "Keep-Alive",
			map[string]string{"Via": "a,b", "Keep-Alive": ""}},
		{"two repeated names around several deleted lines",
			[]string{"X-Del: 1", "Via: a", "Accept: x", "X-Del: 2", "Via: b", "Accept: y", "Via: c"}, "X-Del",
			map[string]string{"Via": "a,b,c", "Accept": "x,y", "X-Del": ""}},
		{"deleted name repeated, nothing else", []string{"X-Del: 1", "A: 1", "X-Del: 2", "B: 2"}, "x-del",
			map[string]string{"A": "1", "B": "2", "X-Del": ""}},
		{"no repeated name", []string{"A: 1", "X-Del: 1", "B: 2", "C: 3"}, "X-Del",
			map[string]string{"A": "1", "B": "2", "C": "3", "X-Del": ""}},
		{"cookies stay", []string{"X-Del: 1", "Cookie: a=1", "Via: a", "Cookie: b=2", "Via: b"}, "X-Del",
			map[string]string{"Via": "a,b", "X-Del": ""}},
	} {
		h := parseRequest(t, c.lines...)
		DelRequest(h, c.del)
		got := lines(h)
		for name, want := range c.want {
			if o := order(got, name); o != want {
				t.Errorf("%s: %s lines %q after Del(%s); want %q (all: %q)", c.name, name, o, c.del, want, got)
			}
		}
	}
	h := parseRequest(t, "X-Del: 1", "Cookie: a=1", "Cookie: b=2")
	DelRequest(h, "X-Del")
	if got := string(h.Cookie("a")) + string(h.Cookie("b")); got != "12" {
		t.Errorf("cookies after Del: a+b = %q; want 12", got)
	}
}

func TestDelResponse(t *testing.T) {
	var h fasthttp.ResponseHeader
	raw := "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nLink: <a>\r\nSet-Cookie: a=1\r\nLink: <b>\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n"
	if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	DelResponse(&h, "Keep-Alive")
	got := lines(&h)
	if o := order(got, "Link"); o != "<a>,<b>" {
		t.Errorf("Link lines %q; want <a>,<b> (all: %q)", o, got)
	}
	if o := order(got, "Set-Cookie"); o != "a=1,b=2" {
		t.Errorf("Set-Cookie lines %q; want a=1,b=2 (all: %q)", o, got)
	}
	if o := order(got, "Keep-Alive"); o != "" {
		t.Errorf("Keep-Alive still there: %q", got)
	}
}

func TestDelAbsentAndCase(t *testing.T) {
	h := parseRequest(t, "X-Api-Key: k", "A: 1")
	DelRequest(h, "X-Missing")
	DelRequest(h, "x-API-key")
	if got := lines(h); len(got) != 1 || got[0] != "A: 1" {
		t.Errorf("after deleting an absent name and x-API-key: %q; want [A: 1]", got)
	}
}

func TestDelAllocs(t *testing.T) {
	h := parseRequest(t, "A: 1", "X-Del: 1", "B: 2")
	n := testing.AllocsPerRun(100, func() {
		h.Add("X-Del", "1")
		DelRequest(h, "X-Del")
	})
	if n != 0 {
		t.Errorf("Del without a repeated name: %v allocs; want 0", n)
	}
}
