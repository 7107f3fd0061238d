package core

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"strings"
	"testing"
	"time"
)

// fakeCC stands in for fasthttp's pooled connection type.
type fakeCC struct{ c net.Conn }

func (f fakeCC) Conn() net.Conn { return f.c }

// decodeChunked runs the stream's chunked decoder over in and returns
// what it read and its final error (nil at a clean end).
func decodeChunked(in []byte, max int64) ([]byte, error) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	s := &connStream[fakeCC]{
		t:     &target{readIdle: time.Minute, maxResponseBody: max},
		br:    bufio.NewReaderSize(bytes.NewReader(in), 16),
		conn:  c1,
		frame: frameChunked,
	}
	var out bytes.Buffer
	buf := make([]byte, 7)
	for i := 0; i <= len(in)+2; i++ { // each Read consumes input, or ends
		n, err := s.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
	return out.Bytes(), errors.New("decoder made no progress")
}

func TestChunkedDecoder(t *testing.T) {
	f := func(in, want string, ok bool) {
		t.Helper()
		got, err := decodeChunked([]byte(in), 0)
		if (err == nil) != ok || ok && string(got) != want {
			t.Fatalf("decode %q: got %q, %v; want %q, ok %v", in, got, err, want, ok)
		}
	}
	f("5\r\nhello\r\n0\r\n\r\n", "hello", true)
	f("5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n", "hello world", true)
	f("A\r\n0123456789\r\n0\r\n\r\n", "0123456789", true)
	f("5\nhello\n0\n\n", "hello", true)
	f("5\r\nhelloXX0\r\n\r\n", "", false) // data longer than its size
	f("zz\r\nhello\r\n0\r\n\r\n", "", false)
	f("5\r\nhel", "", false)             // cut short
	f("", "", false)                     // nothing
	f("1000000000000000\r\n", "", false) // size overflow
	f("-1\r\nx\r\n0\r\n\r\n", "", false)
}

// FuzzChunkedDecoder feeds malformed chunked bodies to the stream's
// decoder: it never panics or spins, never returns more than the input,
// and what it accepts, Go's own chunked reader decodes the same.
func FuzzChunkedDecoder(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n", "5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n", "0\r\n\r\n",
		"ffffffffffffffff\r\n", "5\r\nhel", "5\r\nhelloXX", "\r\n\r\n", "1\r\n\x00\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := decodeChunked(in, 0)
		if len(got) > len(in) {
			t.Fatalf("decoded %d bytes from %d", len(got), len(in))
		}
		if err != nil {
			return
		}
		// Go's reader wants CRLF; compare only on the inputs it can read.
		if bytes.Contains(in, []byte("\n")) && bytes.Count(in, []byte("\r\n")) != bytes.Count(in, []byte("\n")) {
			return
		}
		want, werr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("input %q: decoded %q; Go's chunked reader %q", in, got, want)
		}
	})
}

func TestChunkedDecoderLimit(t *testing.T) {
	in := "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"
	_, err := decodeChunked([]byte(in), 7)
	if err != errUpstreamTooLarge {
		t.Fatalf("a body over max_response_body: got %v; want %v", err, errUpstreamTooLarge)
	}
	if _, err := decodeChunked([]byte(strings.Repeat("x", 3)), 0); err == nil {
		t.Fatal("garbage decoded without an error")
	}
}
