package stub

import (
	"bufio"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"
)

func TestEcho(t *testing.T) {
	r := startStub(t, Options{Name: "echo-a", Echo: true})
	f := func(raw string, want Echo) {
		t.Helper()
		c := dial(t, r.Addr())
		send(t, c, raw)
		resp := readResponse(t, c, bufio.NewReader(c))
		if got := resp.StatusCode(); got != 200 {
			t.Fatalf("got status %d; want 200", got)
		}
		if got := string(resp.Header.ContentType()); got != "application/json" {
			t.Fatalf("got Content-Type %q; want application/json", got)
		}
		var got Echo
		if err := json.Unmarshal(resp.Body(), &got); err != nil {
			t.Fatalf("cannot decode echo %q: %s", resp.Body(), err)
		}
		want.Name = "echo-a"
		want.Proto = "HTTP/1.1"
		want.RemoteAddr = c.LocalAddr().String()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got echo\n%+v\nwant\n%+v", got, want)
		}
	}

	// a raw, un-normalized path, hop-by-hop headers and duplicates arrive as sent
	f("GET /a//b/../c?x=1&y=%20z HTTP/1.1\r\n"+
		"Host: example.com\r\n"+
		"Connection: keep-alive, X-Foo\r\n"+
		"X-Foo: bar\r\n"+
		"X-Dup: 1\r\n"+
		"x-dup: 2\r\n"+
		"User-Agent: raw-test\r\n"+
		"X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"+
		"\r\n", Echo{
		Method: "GET",
		URI:    "/a//b/../c?x=1&y=%20z",
		Path:   "/a//b/../c",
		Query:  "x=1&y=%20z",
		Host:   "example.com",
		Headers: [][2]string{
			{"Host", "example.com"},
			{"Connection", "keep-alive, X-Foo"},
			{"X-Foo", "bar"},
			{"X-Dup", "1"},
			{"X-Dup", "2"},
			{"User-Agent", "raw-test"},
			{"X-Forwarded-For", "10.0.0.1, 127.0.0.1"},
		},
	})

	// a body with characters JSON must escape
	body := "hello \"world\"\n\t\\ \x01 ünï"
	f("POST /submit HTTP/1.1\r\n"+
		"Content-Type: text/plain\r\n"+
		"Host: svc\r\n"+
		"Content-Length: "+strconv.Itoa(len(body))+"\r\n"+
		"Cookie: a=1; b=2\r\n"+
		"\r\n"+body, Echo{
		Method: "POST",
		URI:    "/submit",
		Path:   "/submit",
		Host:   "svc",
		Headers: [][2]string{
			{"Content-Type", "text/plain"},
			{"Host", "svc"},
			{"Content-Length", strconv.Itoa(len(body))},
			{"Cookie", "a=1; b=2"},
		},
		Body:    body,
		BodyLen: len(body),
	})

	// a chunked request body arrives dechunked
	f("PUT /up?q HTTP/1.1\r\n"+
		"Host: svc\r\n"+
		"Transfer-Encoding: chunked\r\n"+
		"\r\n"+
		"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", Echo{
		Method: "PUT",
		URI:    "/up?q",
		Path:   "/up",
		Query:  "q",
		Host:   "svc",
		Headers: [][2]string{
			{"Host", "svc"},
			{"Transfer-Encoding", "chunked"},
		},
		Body:    "hello world",
		BodyLen: 11,
	})

	// an absolute-form request URI is echoed as received
	f("GET http://other.example/p?k=v HTTP/1.1\r\nHost: other.example\r\n\r\n", Echo{
		Method:  "GET",
		URI:     "http://other.example/p?k=v",
		Path:    "http://other.example/p",
		Query:   "k=v",
		Host:    "other.example",
		Headers: [][2]string{{"Host", "other.example"}},
	})
}

func TestEchoKnob(t *testing.T) {
	r := startStub(t, Options{Name: "plain"})
	rEcho := startStub(t, Options{Name: "echoing", Echo: true, Status: 202})
	f := func(r *Running, uri string, headers []string, wantStatus int, wantEcho bool) {
		t.Helper()
		resp := doRequest(t, r.Addr(), "GET", uri, headers...)
		if got := resp.StatusCode(); got != wantStatus {
			t.Fatalf("GET %s %q: got status %d; want %d", uri, headers, got, wantStatus)
		}
		var e Echo
		isEcho := json.Unmarshal(resp.Body(), &e) == nil && e.URI == uri
		if isEcho != wantEcho {
			t.Fatalf("GET %s %q: got body %q; want echo %v", uri, headers, resp.Body(), wantEcho)
		}
	}
	f(r, "/", nil, 200, false)
	f(r, "/?stub_echo=1", nil, 200, true)
	f(r, "/x", []string{"X-Stub-Echo", "1"}, 200, true)
	f(r, "/?stub_echo=1&stub_status=503", nil, 503, true)
	f(r, "/?stub_echo=1&stub_chunked=1", nil, 200, true)
	f(rEcho, "/", nil, 202, true)
	f(rEcho, "/?stub_status=200", nil, 200, true)
	f(rEcho, "/?stub_echo=0", nil, 202, false)
}

func TestEchoOnDemo(t *testing.T) {
	r := startStub(t, Options{Name: "users-a", Demo: DemoUsers})
	resp := doRequest(t, r.Addr(), "GET", "/users/1", "X-Stub-Echo", "1")
	var e Echo
	if err := json.Unmarshal(resp.Body(), &e); err != nil {
		t.Fatalf("cannot decode echo %q: %s", resp.Body(), err)
	}
	if e.Name != "users-a" || e.URI != "/users/1" {
		t.Fatalf("got echo name %q uri %q; want %q %q", e.Name, e.URI, "users-a", "/users/1")
	}
}

func TestAppendJSONString(t *testing.T) {
	f := func(s, want string) {
		t.Helper()
		if got := string(appendJSONString(nil, s)); got != want {
			t.Fatalf("appendJSONString(%q): got %s; want %s", s, got, want)
		}
		if got := string(appendJSONString(nil, []byte(s))); got != want {
			t.Fatalf("appendJSONString([]byte(%q)): got %s; want %s", s, got, want)
		}
	}
	f("", `""`)
	f("plain", `"plain"`)
	f(`a"b\c`, `"a\"b\\c"`)
	f("\n\r\t\x00\x1f\x7f", `"\n\r\t\u0000\u001f`+"\x7f"+`"`)
	f("ünï 世界", `"ünï 世界"`)
	f("a\xffb", `"a\ufffdb"`)
	f("\xe4\xb8", `"\ufffd\ufffd"`)
	f("<&>", `"<&>"`)
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `"\`, "\x00\n", "ünï", "a\xffb", "\xe4\xb8", "\ufffd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		if !json.Valid(b) {
			t.Fatalf("appendJSONString(%q): got invalid JSON %s", s, b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("cannot decode %s: %s", b, err)
		}
		// encoding/json turns every invalid byte into U+FFFD too
		ref, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatalf("cannot decode reference %s: %s", ref, err)
		}
		if got != want {
			t.Fatalf("appendJSONString(%q): got %q after decoding; want %q", s, got, want)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("appendJSONString(%q): got %q after decoding; want the input", s, got)
		}
	})
}

func TestSplitURI(t *testing.T) {
	f := func(uri, wantPath, wantQuery string) {
		t.Helper()
		path, query := splitURI([]byte(uri))
		if string(path) != wantPath || string(query) != wantQuery {
			t.Fatalf("splitURI(%q): got %q, %q; want %q, %q", uri, path, query, wantPath, wantQuery)
		}
	}
	f("/", "/", "")
	f("/a?b", "/a", "b")
	f("/a?", "/a", "")
	f("/a?b?c", "/a", "b?c")
	f("*", "*", "")
}
