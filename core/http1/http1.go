// Package http1 holds strict checks of HTTP/1.x messages for the edge: what
// a gateway must refuse so that messages cannot be smuggled through it.
// fasthttp parses leniently (it tolerates folded lines, bare LF line ends,
// spaces before the colon); a gateway that shares upstream connections
// between clients must not: where two parsers may frame a stream
// differently, one client's bytes can become another's response.
//
// CheckResponseHead is run on an upstream response head, found with
// HeadEnd, before fasthttp parses it; a head it refuses becomes a 502 and
// its connection is closed, never reused. CheckRequestFields is run on
// every client request's header section, as fasthttp kept it; a request it
// refuses gets 400 and its connection is closed.
//
// The functions are pure: they keep no state and are safe for concurrent
// use. HeadEnd, CheckResponseHead and CheckRequestFields allocate nothing.
//
// References: RFC 9112 (HTTP/1.1) §2.2, §4, §5, §6.1, §6.3 and §11.2 on
// request smuggling; RFC 9110 §5.6.2 (tokens) and §5.5 (field values).
package http1

import (
	"bytes"
	"errors"
)

// Errors of CheckResponseHead. Each says what the upstream sent; the fix is
// on the upstream, the gateway only refuses it.
var (
	// ErrStatusLine: the first line is not "HTTP/1.0" or "HTTP/1.1", one
	// space, a status 100-599, then a space and a reason phrase or the end
	// of the line. A blank line before it is refused too.
	ErrStatusLine = errors.New("http1: upstream response has a malformed status line; want HTTP/1.0 or HTTP/1.1, one space and a status 100-599, such as \"HTTP/1.1 200 OK\"")

	// ErrHeaderLine: a header line has no field name (a token), or
	// something other than ':' right after it, such as a space.
	ErrHeaderLine = errors.New("http1: upstream response has a malformed header line; want a field name (a token) directly followed by ':'")

	// ErrObsFold: a header line starts with a space or a tab, continuing
	// the line before it (obs-fold, RFC 9112 §5.2).
	ErrObsFold = errors.New("http1: upstream response has a folded header line (a line starting with a space or tab)")

	// ErrBadByte: the head holds a NUL, a CR not followed by LF, or another
	// control character than HTAB.
	ErrBadByte = errors.New("http1: upstream response head has a NUL, a bare CR or another control character")

	// ErrDuplicateContentLength: more than one Content-Length line, or a
	// list of values in one ("5, 5"), even when the values are equal.
	ErrDuplicateContentLength = errors.New("http1: upstream response has more than one Content-Length")

	// ErrBadContentLength: a Content-Length value is not 1-18 digits.
	ErrBadContentLength = errors.New("http1: upstream response has a Content-Length that is not 1-18 digits")

	// ErrContentLengthWithTransferEncoding: both framings at once, the
	// classic smuggling vector (RFC 9112 §6.3, §11.2).
	ErrContentLengthWithTransferEncoding = errors.New("http1: upstream response has both Content-Length and Transfer-Encoding")

	// ErrBadTransferEncoding: the Transfer-Encoding list (all its lines
	// together) does not end with chunked, lists chunked twice, or has an
	// empty element.
	ErrBadTransferEncoding = errors.New("http1: upstream response has a Transfer-Encoding whose final coding is not chunked, or that lists chunked twice")

	// ErrTransferEncodingHTTP10: an HTTP/1.0 response with
	// Transfer-Encoding, which HTTP/1.0 does not have; RFC 9112 §6.1 says
	// to treat its framing as faulty (fasthttp ignores the field there).
	ErrTransferEncodingHTTP10 = errors.New("http1: upstream HTTP/1.0 response has Transfer-Encoding, which HTTP/1.0 does not define")

	// ErrIncompleteHead: the bytes given to CheckResponseHead do not end
	// at their first blank line: a caller bug, not an upstream one.
	ErrIncompleteHead = errors.New("http1: response head does not end at its first blank line; pass b[:HeadEnd(b)]")
)

// HeadEnd returns the length of the message head at the start of b: the
// bytes up to and including the first empty line, or -1 when b holds no
// empty line yet. A line ends with LF, optionally preceded by CR, so the
// head ends with "\r\n\r\n", "\r\n\n", "\n\r\n" or "\n\n", as fasthttp's
// header scanner frames it. A b starting with an empty line has a head of
// that line alone (1 or 2 bytes), which CheckResponseHead refuses: fasthttp
// would skip it, the gateway does not guess.
//
// fasthttp (v1.78) parses a head ending in a bare-LF blank line only once
// a "\r\n\r\n" is buffered somewhere, so it may wait for more bytes where
// HeadEnd already found the end; it never frames the head differently.
//
// HeadEnd allocates nothing.
func HeadEnd(b []byte) int {
	i := 0
	for {
		n := bytes.IndexByte(b[i:], '\n')
		if n < 0 {
			return -1
		}
		if n == 0 || n == 1 && b[i] == '\r' {
			return i + n + 1
		}
		i += n + 1
	}
}

// CheckResponseHead reports whether head, an HTTP/1.x response head from
// an upstream, is safe to parse and forward: nil, or the error of the
// first problem found, one of the Err values of this package. head must
// be exactly a whole head, b[:HeadEnd(b)]; else ErrIncompleteHead.
//
// It refuses:
//   - a status line other than "HTTP/1.0" or "HTTP/1.1", SP, a status
//     100-599, then SP and a reason phrase (no control characters but
//     HTAB) or the end of the line;
//   - a NUL, a bare CR or a control character other than HTAB in a header
//     line, a folded line, a field name that is not a token directly
//     followed by ':';
//   - a Content-Length that is not 1-18 digits, or given twice (two lines,
//     or a list in one line, even of equal values);
//   - Transfer-Encoding with Content-Length, in an HTTP/1.0 response, or
//     whose list (all its lines joined) does not end with chunked or lists
//     it twice.
//
// Bare LF line ends are accepted (RFC 9112 §2.2). Names are matched
// case-insensitively. One linear pass; CheckResponseHead allocates
// nothing.
func CheckResponseHead(head []byte) error {
	i, err := checkStatusLine(head)
	if err != nil {
		return err
	}
	f := framing{http10: head[len("HTTP/1.")] == '0'}
	for {
		if i >= len(head) {
			return ErrIncompleteHead
		}
		switch head[i] {
		case '\n':
			return f.end(head, i+1)
		case '\r':
			if i+1 < len(head) && head[i+1] == '\n' {
				return f.end(head, i+2)
			}
			return ErrBadByte
		case ' ', '\t':
			return ErrObsFold
		}
		if i, err = f.checkFieldLine(head, i); err != nil {
			return err
		}
	}
}

// byte classes of a head line.
const (
	classToken = 1 << iota // RFC 9110 §5.6.2 tchar
	// classStop ends the fast scan of a value: CR, LF, and the bytes never
	// allowed (NUL and the other control characters but HTAB, and DEL).
	classStop
)

var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c < 0x20 && c != '\t' || c == 0x7f:
			t[c] = classStop
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			t[c] = classToken
		}
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = classToken
	}
	return t
}()

// checkStatusLine checks the status line at the start of head and returns
// the offset of the line after it.
func checkStatusLine(head []byte) (int, error) {
	const minLen = len("HTTP/1.1 200\n")
	if len(head) < minLen || string(head[:len("HTTP/1.")]) != "HTTP/1." ||
		head[7] != '0' && head[7] != '1' || head[8] != ' ' || !isStatus(head[9:12]) {
		return 0, ErrStatusLine
	}
	i := len("HTTP/1.1 200")
	switch head[i] {
	case ' ':
		i++ // the reason phrase, maybe empty
	case '\r', '\n':
	default:
		return 0, ErrStatusLine
	}
	_, next, err := scanValue(head, i)
	if err == ErrBadByte {
		return 0, ErrStatusLine
	}
	return next, err
}

// isStatus reports whether b is three digits 100-599.
func isStatus(b []byte) bool {
	return b[0] >= '1' && b[0] <= '5' && isDigit(b[1]) && isDigit(b[2])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanValue scans the field value or reason phrase at head[i:] to its line
// end and returns where the value ends (before CRLF or LF) and where the
// next line starts.
func scanValue(head []byte, i int) (end, next int, err error) {
	// fast path: bytes that are neither line ends nor forbidden
	for i < len(head) && byteClass[head[i]]&classStop == 0 {
		i++
	}
	switch {
	case i == len(head):
		return 0, 0, ErrIncompleteHead
	case head[i] == '\n':
		return i, i + 1, nil
	case head[i] == '\r' && i+1 < len(head) && head[i+1] == '\n':
		return i, i + 2, nil
	}
	return 0, 0, ErrBadByte
}

// framing is what CheckResponseHead has seen of the fields that frame the
// body.
type framing struct {
	http10           bool
	contentLength    bool
	transferEncoding bool
	chunked          int  // times chunked is listed in Transfer-Encoding
	lastChunked      bool // the last coding listed so far is chunked
}

// checkFieldLine checks the header line at head[i:], which starts with
// neither a space nor a line end, and returns where the next line starts.
func (f *framing) checkFieldLine(head []byte, i int) (int, error) {
	start := i
	for i < len(head) && byteClass[head[i]]&classToken != 0 {
		i++
	}
	if i == len(head) {
		return 0, ErrIncompleteHead
	}
	if head[i] != ':' || i == start {
		return 0, badNameByte(head, i)
	}
	name := head[start:i]
	i++
	for i < len(head) && (head[i] == ' ' || head[i] == '\t') {
		i++
	}
	valueStart := i
	end, next, err := scanValue(head, i)
	if err != nil {
		return 0, err
	}
	return next, f.field(name, trimOWSRight(head[valueStart:end]))
}

// badNameByte returns the error of a field name that stops at head[i]
// without a ':' after it (or is empty).
func badNameByte(head []byte, i int) error {
	c := head[i]
	if byteClass[c]&classStop == 0 || c == '\n' || c == '\r' && i+1 < len(head) && head[i+1] == '\n' {
		return ErrHeaderLine // a space, a separator, or a line without a colon
	}
	return ErrBadByte
}

// field notes a field that frames the body.
func (f *framing) field(name, value []byte) error {
	switch {
	case equalFold(name, "content-length"):
		return f.contentLengthField(value)
	case equalFold(name, "transfer-encoding"):
		return f.transferEncodingField(value)
	}
	return nil
}

func (f *framing) contentLengthField(v []byte) error {
	if f.contentLength {
		return ErrDuplicateContentLength
	}
	f.contentLength = true
	if f.transferEncoding {
		return ErrContentLengthWithTransferEncoding
	}
	n := 0
	for more := true; more; n++ {
		var elem []byte
		elem, v, more = cutList(v)
		if !isContentLength(elem) {
			return ErrBadContentLength
		}
	}
	if n > 1 {
		return ErrDuplicateContentLength
	}
	return nil
}

// isContentLength reports whether b is 1-18 digits: any such number fits
// an int64.
func isContentLength(b []byte) bool {
	if len(b) == 0 || len(b) > 18 {
		return false
	}
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

func (f *framing) transferEncodingField(v []byte) error {
	f.transferEncoding = true
	switch {
	case f.http10:
		return ErrTransferEncodingHTTP10
	case f.contentLength:
		return ErrContentLengthWithTransferEncoding
	}
	for more := true; more; {
		var elem []byte
		elem, v, more = cutList(v)
		if len(elem) == 0 {
			return ErrBadTransferEncoding
		}
		f.lastChunked = equalFold(elem, "chunked")
		if f.lastChunked {
			if f.chunked++; f.chunked > 1 {
				return ErrBadTransferEncoding
			}
		}
	}
	return nil
}

// end checks the framing once the blank line ending at head[n] is reached.
func (f *framing) end(head []byte, n int) error {
	switch {
	case n != len(head):
		return ErrIncompleteHead
	case f.transferEncoding && !f.lastChunked:
		return ErrBadTransferEncoding
	}
	return nil
}

// cutList returns the first element of the comma-separated list v, OWS
// trimmed, the rest after its comma, and whether there was a comma.
func cutList(v []byte) (elem, rest []byte, more bool) {
	if i := bytes.IndexByte(v, ','); i >= 0 {
		elem, rest, more = v[:i], v[i+1:], true
	} else {
		elem = v
	}
	return trimOWSRight(trimOWSLeft(elem)), rest, more
}

func trimOWSLeft(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func trimOWSRight(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals lower, a lowercase name of letters
// and '-', ignoring ASCII case. b[i]|0x20 equals a lowercase letter only
// for that letter's two cases, and equals '-' for '-' and CR; no b
// compared here holds a CR (a token does not, and a value's CR ends it).
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}
