package core

import (
	"bufio"
	"bytes"
	"errors"
	"fastgate/core/hdr"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Framing of a streamed response body.
const (
	frameLength  = iota // Content-Length bytes
	frameChunked        // chunked transfer coding
	frameClose          // until the upstream closes the connection
)

var errBadChunk = errors.New("core: malformed chunked body from upstream")

// connStream streams an upstream response body to the client with bounded
// memory. fasthttp's server reads it while writing the response and closes
// it when done; closing returns the connection to the target's pool when the
// body was read whole, and closes the connection otherwise.
//
// C is fasthttp's unexported pooled-connection type, named only through
// inference at the call site; release and close are the HostClient's
// ReleaseConn and CloseConn method expressions, so nothing here allocates.
// A connStream is pooled; it is used by one goroutine at a time.
type connStream[C any] struct {
	t       *target
	cc      C
	br      *bufio.Reader
	conn    net.Conn
	release func(*fasthttp.HostClient, C)
	close   func(*fasthttp.HostClient, C)
	// x is the request whose response this is; nil for a response that
	// is not a client's (a fan-out's).
	x *exchange

	frame     int
	remaining int64 // frameLength: bytes left; frameChunked: bytes left in the chunk
	needCRLF  bool  // frameChunked: a chunk's data ended, its CRLF is unread
	total     int64
	done      bool
	keepAlive bool
}

var streamPool sync.Pool

// startStream makes resp's body a stream over br. n is the Content-Length,
// or -1 for chunked, or -2 for "until close". x, when not nil, is the
// request whose response resp is: it completes when the stream closes.
func startStream[C interface{ Conn() net.Conn }](resp *fasthttp.Response, t *target, cc C, br *bufio.Reader,
	n int, keepAlive bool, x *exchange, release, closeConn func(*fasthttp.HostClient, C),
) {
	s, _ := streamPool.Get().(*connStream[C])
	if s == nil {
		s = &connStream[C]{}
	}
	s.t, s.cc, s.br, s.conn = t, cc, br, cc.Conn()
	s.release, s.close = release, closeConn
	s.keepAlive = keepAlive
	s.x = x
	if x != nil {
		x.streamed = true
	}
	switch {
	case n >= 0:
		s.frame, s.remaining = frameLength, int64(n)
	case n == -1:
		s.frame = frameChunked
	default:
		s.frame, s.keepAlive = frameClose, false
	}
	// Removing Transfer-Encoding resets fasthttp's framing: the length is
	// set again by SetBodyStream, and -1 makes the server chunk it.
	hdr.DelResponse(&resp.Header, "Transfer-Encoding")
	if n < 0 {
		n = -1
	}
	resp.SetBodyStream(s, n)
}

// Read implements io.Reader.
func (s *connStream[C]) Read(p []byte) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Each read of a streamed body may take up to the per-try timeout (or
	// the upstream's request timeout): an idle timeout, so long downloads
	// are not cut by the route's timeout.
	if err := s.conn.SetReadDeadline(time.Now().Add(s.t.readIdle)); err != nil {
		return 0, err
	}
	var n int
	var err error
	switch s.frame {
	case frameLength:
		n, err = s.readLength(p)
	case frameChunked:
		n, err = s.readChunked(p)
	default:
		n, err = s.br.Read(p)
		if err == io.EOF {
			s.done = true
		}
	}
	s.total += int64(n)
	if x := s.x; x != nil && n > 0 {
		x.bytesOut += int64(n)
		x.teeBody(p[:n])
	}
	if max := s.t.maxResponseBody; max > 0 && s.total > max {
		return n, errUpstreamTooLarge
	}
	return n, err
}

func (s *connStream[C]) readLength(p []byte) (int, error) {
	if s.remaining == 0 {
		s.done = true
		return 0, io.EOF
	}
	if int64(len(p)) > s.remaining {
		p = p[:s.remaining]
	}
	n, err := s.br.Read(p)
	s.remaining -= int64(n)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	if s.remaining == 0 {
		s.done = true
		if err == nil {
			err = io.EOF
		}
	}
	return n, err
}

func (s *connStream[C]) readChunked(p []byte) (int, error) {
	if s.remaining == 0 {
		if err := s.nextChunk(); err != nil {
			return 0, err
		}
		if s.done {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > s.remaining {
		p = p[:s.remaining]
	}
	n, err := s.br.Read(p)
	s.remaining -= int64(n)
	if s.remaining == 0 {
		s.needCRLF = true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// nextChunk reads the CRLF ending the previous chunk and the next chunk's
// size line; on the last chunk it reads the trailer section and marks done.
func (s *connStream[C]) nextChunk() error {
	if s.needCRLF {
		if err := s.readCRLF(); err != nil {
			return err
		}
		s.needCRLF = false
	}
	line, err := s.readLine()
	if err != nil {
		return err
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions are ignored
	}
	size, ok := parseHex(bytes.TrimSpace(line))
	if !ok {
		return errBadChunk
	}
	if size > 0 {
		s.remaining = size
		return nil
	}
	// Last chunk: trailers are dropped (they are not forwarded) up to the
	// empty line.
	for {
		line, err := s.readLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			s.done = true
			return nil
		}
	}
}

func (s *connStream[C]) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

func (s *connStream[C]) readCRLF() error {
	line, err := s.readLine()
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return errBadChunk
	}
	return nil
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(c)
	}
	return n, true
}

// CloseWithError releases the connection: back to the pool when the body was
// read whole and the upstream keeps it alive, closed otherwise. fasthttp's
// server calls it once the response is written, or failed. (No Close method:
// fasthttp would call both.)
func (s *connStream[C]) CloseWithError(err error) error {
	hc := s.t.hc
	hc.ReleaseReader(s.br)
	if s.done && err == nil && s.keepAlive {
		s.release(hc, s.cc)
	} else {
		s.close(hc, s.cc)
	}
	s.t.lb.End()
	x := s.x
	var zero C
	*s = connStream[C]{cc: zero}
	streamPool.Put(s)
	if x != nil {
		x.streamClosed(err)
	}
	return nil
}
