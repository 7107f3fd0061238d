package http1

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzHeadEnd checks that HeadEnd's head is within b, ends with a line
// end, and is the first empty line: no shorter prefix holds a head.
func FuzzHeadEnd(f *testing.F) {
	headEndCases(func(head, tail string) { f.Add([]byte(head + tail)) })
	headCases(func(head string, _ error) { f.Add([]byte(head)) })
	f.Fuzz(func(t *testing.T, b []byte) {
		n := HeadEnd(b)
		if n == -1 {
			if bytes.HasPrefix(b, []byte("\n")) || bytes.HasPrefix(b, []byte("\r\n")) ||
				bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n")) {
				t.Fatalf("HeadEnd(%q): got -1; b holds an empty line", b)
			}
			return
		}
		if n < 1 || n > len(b) || b[n-1] != '\n' {
			t.Fatalf("HeadEnd(%q): got %d; want 1..%d at a LF", b, n, len(b))
		}
		if m := HeadEnd(b[:n]); m != n {
			t.Fatalf("HeadEnd(%q): got %d; want %d as for the longer %q", b[:n], m, n, b)
		}
		if m := HeadEnd(b[:n-1]); m != -1 {
			t.Fatalf("HeadEnd(%q): got %d; want -1 (HeadEnd(%q) = %d is the first)", b[:n-1], m, b, n)
		}
	})
}

// FuzzCheckResponseHead checks that CheckResponseHead never panics,
// returns only its own errors, accepts only whole heads, and that where
// fasthttp also reads an accepted head, it frames it at the same length
// (the property a smuggling check exists for).
func FuzzCheckResponseHead(f *testing.F) {
	headCases(func(head string, _ error) { f.Add([]byte(head)) })
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckResponseHead(b)
		if err != nil && !isCheckError(err) {
			t.Fatalf("CheckResponseHead(%q): got %v; want nil or an Err value", b, err)
		}
		if err == nil && HeadEnd(b) != len(b) {
			t.Fatalf("CheckResponseHead(%q): got nil for a head of %d bytes; want an error", b, HeadEnd(b))
		}
		n := HeadEnd(b)
		if n < 0 || CheckResponseHead(b[:n]) != nil {
			return
		}
		// fasthttp frames a bare-LF blank line only with a "\r\n\r\n"
		// buffered; the body supplies one.
		const body = "\r\n\r\n"
		in := append(b[:n:n], body...)
		var h fasthttp.ResponseHeader
		r := bufio.NewReaderSize(bytes.NewReader(in), len(in)+16)
		if h.Read(r) == nil && r.Buffered() != len(body) {
			t.Fatalf("head %q: fasthttp read %d bytes; want %d", b[:n], len(in)-r.Buffered(), n)
		}
	})
}
