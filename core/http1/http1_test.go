package http1

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// headEndCases calls f with each HeadEnd case: b is head+tail, and HeadEnd
// must return len(head), or -1 when head is "".
func headEndCases(f func(head, tail string)) {
	// no whole head yet
	f("", "")
	f("", "HTTP/1.1 200 OK")
	f("", "HTTP/1.1 200 OK\r\n")
	f("", "HTTP/1.1 200 OK\r\nA: b\r\n\r")
	f("", "HTTP/1.1 200 OK\r\nA: b\r\r\n")
	f("", "HTTP/1.1 200 OK\r\nA: b\n\r")

	// the four ends of a head, with and without a body after it
	f("HTTP/1.1 200 OK\r\nA: b\r\n\r\n", "")
	f("HTTP/1.1 200 OK\r\nA: b\r\n\r\n", "body\r\n\r\n")
	f("HTTP/1.1 200 OK\r\nA: b\r\n\n", "body")
	f("HTTP/1.1 200 OK\nA: b\n\r\n", "body")
	f("HTTP/1.1 200 OK\nA: b\n\n", "body\n\n")
	f("HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n")

	// a CR that does not end a line does not make an empty one
	f("HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n", "")
	f("HTTP/1.1 200 OK\r\n\r\r\n\n", "")

	// an empty first line is a head of its own, which the check refuses
	f("\r\n", "HTTP/1.1 200 OK\r\n\r\n")
	f("\n", "\n")
}

func TestHeadEnd(t *testing.T) {
	headEndCases(func(head, tail string) {
		t.Helper()
		want := len(head)
		if head == "" {
			want = -1
		}
		if got := HeadEnd([]byte(head + tail)); got != want {
			t.Fatalf("HeadEnd(%q): got %d; want %d", head+tail, got, want)
		}
	})
}

// Heads on which fasthttp (v1.78) is stricter than CheckResponseHead; see
// TestCheckResponseHeadFasthttp.
const (
	// fasthttp takes exactly "chunked" and one Transfer-Encoding line;
	// RFC 9112 §6.1 allows other codings before it.
	headGzipChunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
	headTwoTELines  = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
	headTEParams    = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip;q=1 ,\tChunked\r\n\r\n"
	// fasthttp waits for a "\r\n\r\n" in its buffer before it takes a
	// blank line ending in a bare LF (see HeadEnd).
	headLF     = "HTTP/1.0 200 OK\nContent-Length: 0\nX-A: b\n\n"
	headCRLFLF = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"
)

// benchHead is a typical response head: 156 bytes, 5 fields.
const benchHead = "HTTP/1.1 200 OK\r\n" +
	"Server: nginx/1.27.4\r\n" +
	"Date: Mon, 02 Jun 2025 15:04:05 GMT\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Length: 1234\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

// headCases calls f with each CheckResponseHead case: a whole head and the
// error it must return.
func headCases(f func(head string, want error)) {
	// accepted
	f(benchHead, nil)
	f("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n", nil)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", nil)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", nil)
	f(headGzipChunked, nil)
	f(headTwoTELines, nil)
	f(headTEParams, nil)
	f("HTTP/1.1 200 OK\r\nX-Tab: a\tb\t\r\nX-Tab2:\tc\r\n\r\n", nil)
	f("HTTP/1.1 404 Not Found Here  \r\n\r\n", nil)
	f("HTTP/1.1 200 O\tK\r\n\r\n", nil)
	f("HTTP/1.1 204\r\n\r\n", nil)
	f("HTTP/1.1 200 \r\n\r\n", nil)
	f("HTTP/1.1 100 Continue\r\n\r\n", nil)
	f("HTTP/1.0 599 x\r\ncontent-length:  000000000000000012 \r\n\r\n", nil)
	f("HTTP/1.1 200 OK\r\nContent-Length:7\r\nTransfer-Encodings: x\r\nX-Content-Length: 1, 2\r\n\r\n", nil)
	f("HTTP/1.1 200 OK\r\nX-Obs-Text: caf\xc3\xa9 \xff\r\nX-Empty:\r\nX-Space: \r\n\r\n", nil)
	f("HTTP/1.1 200 OK\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", nil)
	f("HTTP/1.1 200 OK\nA: b\r\n\r\n", nil)
	f(headLF, nil)
	f(headCRLFLF, nil)
	f("HTTP/1.1 200 OK\n\n", nil)

	// status line
	f("HTTP/1.2 200 OK\r\n\r\n", ErrStatusLine)
	f("HTTP/2 200 OK\r\n\r\n", ErrStatusLine)
	f("http/1.1 200 OK\r\n\r\n", ErrStatusLine)
	f(" HTTP/1.1 200 OK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1  200 OK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1\t200 OK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 2000 OK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 20 OK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 20\n\n", ErrStatusLine)
	f("HTTP/1.1 099 OK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 600 OK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 2x0 OK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 200\tOK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 200 O\x00K\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 200 O\rK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 200 O\x7fK\r\n\r\n", ErrStatusLine)
	f("HTTP/1.1 200\r\r\n\r\n", ErrStatusLine)
	f("\r\n", ErrStatusLine)
	f("\n", ErrStatusLine)
	f("", ErrStatusLine)

	// bytes
	f("HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n", ErrBadByte)
	f("HTTP/1.1 200 OK\r\nA\x00: b\r\n\r\n", ErrBadByte)
	f("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", ErrBadByte)
	f("HTTP/1.1 200 OK\r\nA: b\r\r\n\r\n", ErrBadByte)
	f("HTTP/1.1 200 OK\r\nA\r: b\r\n\r\n", ErrBadByte)
	f("HTTP/1.1 200 OK\r\n\rA: b\r\n\r\n", ErrBadByte)
	f("HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", ErrBadByte)
	f("HTTP/1.1 200 OK\r\nA: \x0bb\r\n\r\n", ErrBadByte)
	f("HTTP/1.1 200 OK\r\nA: b\x1f\r\n\r\n", ErrBadByte)
	f("HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n", ErrBadByte)

	// folded lines
	f("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", ErrObsFold)
	f("HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n", ErrObsFold)
	f("HTTP/1.1 200 OK\r\n A: b\r\n\r\n", ErrObsFold)
	f("HTTP/1.1 200 OK\nContent-Length: 5\n 5\n\n", ErrObsFold)

	// field names
	f("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", ErrHeaderLine)
	f("HTTP/1.1 200 OK\r\nA\t: b\r\n\r\n", ErrHeaderLine)
	f("HTTP/1.1 200 OK\r\n: b\r\n\r\n", ErrHeaderLine)
	f("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", ErrHeaderLine)
	f("HTTP/1.1 200 OK\nNoColon\n\n", ErrHeaderLine)
	f("HTTP/1.1 200 OK\r\nA b: c\r\n\r\n", ErrHeaderLine)
	f("HTTP/1.1 200 OK\r\nA(b): c\r\n\r\n", ErrHeaderLine)
	f("HTTP/1.1 200 OK\r\nX-\xff: c\r\n\r\n", ErrHeaderLine)

	// Content-Length
	f("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", ErrBadContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", ErrBadContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", ErrBadContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n", ErrBadContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", ErrBadContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: 5 5\r\n\r\n", ErrBadContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: 1234567890123456789\r\n\r\n", ErrBadContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\n", ErrBadContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: ,5\r\n\r\n", ErrBadContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", ErrDuplicateContentLength)
	f("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nCONTENT-LENGTH: 6\r\n\r\n", ErrDuplicateContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", ErrDuplicateContentLength)
	f("HTTP/1.1 200 OK\r\nContent-Length: 5,5\r\n\r\n", ErrDuplicateContentLength)

	// Content-Length with Transfer-Encoding, in either order
	f("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", ErrContentLengthWithTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", ErrContentLengthWithTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\ncontent-length: 5\r\n\r\n", ErrContentLengthWithTransferEncoding)

	// Transfer-Encoding
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: , chunked\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n", ErrBadTransferEncoding)
	f("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTransferEncodingHTTP10)

	// not a whole head: a caller bug
	f("HTTP/1.1 200 OK", ErrIncompleteHead)
	f("HTTP/1.1 200 OK\r\nA: b\r\n", ErrIncompleteHead)
	f("HTTP/1.1 200 OK\r\nA: b", ErrIncompleteHead)
	f("HTTP/1.1 200 OK\r\nAbc", ErrIncompleteHead)
	f("HTTP/1.1 200 OK\r\n\r\nX", ErrIncompleteHead)
	f("HTTP/1.1 200 OK\r\n\r", ErrBadByte)
}

func TestCheckResponseHead(t *testing.T) {
	headCases(func(head string, want error) {
		t.Helper()
		if got := CheckResponseHead([]byte(head)); got != want {
			t.Fatalf("CheckResponseHead(%q): got %v; want %v", head, got, want)
		}
	})
}

// TestCheckResponseHeadFasthttp reads each head CheckResponseHead accepts,
// with a body after it, with fasthttp's ResponseHeader.Read: fasthttp must
// read it too and end the head where HeadEnd does, except on the heads
// where fasthttp is known to be stricter, which it must refuse (so this
// test notices when fasthttp changes).
func TestCheckResponseHeadFasthttp(t *testing.T) {
	stricter := []string{headGzipChunked, headTwoTELines, headTEParams, headLF, headCRLFLF, "HTTP/1.1 200 OK\n\n"}
	n := 0
	headCases(func(head string, want error) {
		t.Helper()
		if want != nil {
			return
		}
		n++
		var h fasthttp.ResponseHeader
		r := bufio.NewReader(strings.NewReader(head + "body"))
		err := h.Read(r)
		switch {
		case contains(stricter, head):
			if err == nil {
				t.Fatalf("fasthttp read %q; want an error (remove it from the stricter list)", head)
			}
		case err != nil:
			t.Fatalf("fasthttp: read %q: got %v; want nil", head, err)
		case r.Buffered() != len("body"):
			t.Fatalf("fasthttp: read %q: got a head of %d bytes; want %d", head, len(head)+len("body")-r.Buffered(), len(head))
		}
	})
	if n < 10 {
		t.Fatalf("got %d accepted heads; want at least 10", n)
	}
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}

// TestErrorsArePrefixed keeps the error texts in the package's form.
func TestErrorsArePrefixed(t *testing.T) {
	for _, err := range checkErrors {
		if s := err.Error(); !strings.HasPrefix(s, "http1: ") {
			t.Fatalf("error %q: got no \"http1: \" prefix; want one", s)
		}
	}
}

// checkErrors are every error CheckResponseHead returns.
var checkErrors = []error{
	ErrStatusLine, ErrHeaderLine, ErrObsFold, ErrBadByte, ErrDuplicateContentLength,
	ErrBadContentLength, ErrContentLengthWithTransferEncoding, ErrBadTransferEncoding,
	ErrTransferEncodingHTTP10, ErrIncompleteHead,
}

func isCheckError(err error) bool {
	for _, e := range checkErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
