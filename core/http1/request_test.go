package http1

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// requestCases calls f with request header sections and what
// CheckRequestFields must return for them.
func requestCases(f func(fields string, http10 bool, want error)) {
	f("", false, nil)
	f("Host: a\r\n\r\n", false, nil)
	f("Host: a\r\nX-Empty:\r\nX-Tab:\tv \t\r\nContent-Length: 3\r\n\r\n", false, nil)
	f("Host: a\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil)
	f("Host: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, nil) // the framing is sound; fasthttp refuses the coding
	f("Host: a\n\n", false, ErrRequestBareLF)
	f("Host: a\r\n\n", false, ErrRequestBareLF)
	f("Host: a\nX: b\r\n\r\n", false, ErrRequestBareLF)
	f("Host: a\r\nX: a\r\n b\r\n\r\n", false, ErrRequestObsFold)
	f("Host: a\r\nX: a\r\n\tb\r\n\r\n", false, ErrRequestObsFold)
	f("X Y: a\r\n\r\n", false, ErrRequestHeaderLine)
	f("X : a\r\n\r\n", false, ErrRequestHeaderLine)
	f(": a\r\n\r\n", false, ErrRequestHeaderLine)
	f("X(Y: a\r\n\r\n", false, ErrRequestHeaderLine)
	f("X\x01Y: a\r\n\r\n", false, ErrRequestBadByte)
	f("X: a\x00b\r\n\r\n", false, ErrRequestBadByte)
	f("X: a\rb\r\n\r\n", false, ErrRequestBadByte)
	f("Content-Length: 3\r\nContent-Length: 3\r\n\r\n", false, ErrRequestDuplicateContentLength)
	f("Content-Length: 3, 4\r\n\r\n", false, ErrRequestDuplicateContentLength)
	f("Content-Length: -1\r\n\r\n", false, ErrRequestBadContentLength)
	f("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false, ErrRequestContentLengthWithChunked)
	f("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", false, ErrRequestContentLengthWithChunked)
	f("Transfer-Encoding: chunked, gzip\r\n\r\n", false, ErrRequestBadTransferEncoding)
	f("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", false, ErrRequestBadTransferEncoding)
	f("Transfer-Encoding: chunked\r\n\r\n", true, ErrRequestTransferEncodingHTTP10)
	f("Host: a\r\n", false, ErrRequestIncompleteFields)
	f("Host: a\r\n\r\nX: b\r\n\r\n", false, ErrRequestIncompleteFields)
}

func TestCheckRequestFields(t *testing.T) {
	requestCases(func(fields string, http10 bool, want error) {
		t.Helper()
		var names []string
		err := CheckRequestFields([]byte(fields), http10, func(name []byte) { names = append(names, string(name)) })
		if err != want {
			t.Fatalf("CheckRequestFields(%q, http10=%v): got %v; want %v", fields, http10, err, want)
		}
		if err == nil && fields != "" && names[0] != string(bytes.SplitN([]byte(fields), []byte(":"), 2)[0]) {
			t.Fatalf("CheckRequestFields(%q): visited %q first; want the first field's name", fields, names)
		}
	})
}

// TestCheckRequestFieldsFasthttp: the header sections fasthttp keeps as
// RawHeaders are what CheckRequestFields expects: a well-formed request's
// passes.
func TestCheckRequestFieldsFasthttp(t *testing.T) {
	f := func(raw string) {
		t.Helper()
		var h fasthttp.RequestHeader
		if err := h.Read(bufioReader(raw)); err != nil {
			t.Fatalf("fasthttp cannot read %q: %s", raw, err)
		}
		if err := CheckRequestFields(h.RawHeaders(), !h.IsHTTP11(), nil); err != nil {
			t.Fatalf("%q: RawHeaders %q: got %v; want nil", raw, h.RawHeaders(), err)
		}
	}
	f("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	f("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX-A: 1\r\n\r\nabc")
	f("GET / HTTP/1.0\r\n\r\n")
}

func FuzzCheckRequestFields(f *testing.F) {
	requestCases(func(fields string, http10 bool, _ error) { f.Add([]byte(fields), http10) })
	f.Fuzz(func(t *testing.T, b []byte, http10 bool) {
		err := CheckRequestFields(b, http10, func(name []byte) {
			if len(name) == 0 || !bytes.Contains(b, name) {
				t.Fatalf("CheckRequestFields(%q): visited %q", b, name)
			}
		})
		if err != nil && !bytes.HasPrefix([]byte(err.Error()), []byte("http1: ")) {
			t.Fatalf("CheckRequestFields(%q): got %v; want nil or an ErrRequest value", b, err)
		}
		if err == nil && len(b) > 0 && !bytes.HasSuffix(b, []byte("\r\n\r\n")) && string(b) != "\r\n" {
			t.Fatalf("CheckRequestFields(%q): accepted fields that do not end in CRLF CRLF", b)
		}
	})
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
