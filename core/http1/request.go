package http1

import "errors"

// Errors of CheckRequestFields. Each names what the client sent wrong; the
// gateway answers 400 and closes the connection.
var (
	ErrRequestBareLF                   = errors.New("http1: request has a line ending in a bare LF; end every line with CRLF")
	ErrRequestHeaderLine               = errors.New("http1: request has a malformed header line; want a field name (a token, no spaces) directly followed by ':'")
	ErrRequestObsFold                  = errors.New("http1: request has a folded header line (a line starting with a space or tab)")
	ErrRequestBadByte                  = errors.New("http1: request head has a NUL, a bare CR or another control character")
	ErrRequestDuplicateContentLength   = errors.New("http1: request has more than one Content-Length")
	ErrRequestBadContentLength         = errors.New("http1: request has a Content-Length that is not 1-18 digits")
	ErrRequestContentLengthWithChunked = errors.New("http1: request has both Content-Length and Transfer-Encoding")
	ErrRequestBadTransferEncoding      = errors.New("http1: request has a Transfer-Encoding other than a final chunked")
	ErrRequestTransferEncodingHTTP10   = errors.New("http1: HTTP/1.0 request has Transfer-Encoding, which HTTP/1.0 does not define")
	ErrRequestIncompleteFields         = errors.New("http1: request fields do not end at their first blank line")
)

// requestError maps an error of the shared scanner to its request-side
// twin.
func requestError(err error) error {
	switch err {
	case nil:
		return nil
	case ErrHeaderLine:
		return ErrRequestHeaderLine
	case ErrObsFold:
		return ErrRequestObsFold
	case ErrBadByte:
		return ErrRequestBadByte
	case ErrDuplicateContentLength:
		return ErrRequestDuplicateContentLength
	case ErrBadContentLength:
		return ErrRequestBadContentLength
	case ErrContentLengthWithTransferEncoding:
		return ErrRequestContentLengthWithChunked
	case ErrBadTransferEncoding:
		return ErrRequestBadTransferEncoding
	case ErrTransferEncodingHTTP10:
		return ErrRequestTransferEncodingHTTP10
	}
	return ErrRequestIncompleteFields
}

// CheckRequestFields reports whether fields, the header section of a
// client request (the lines after the request line, through the blank line
// that ends them, as fasthttp's RequestHeader.RawHeaders keeps them), is
// safe to forward: nil, or the first problem, one of the ErrRequest values.
// http10 says the request line's version is HTTP/1.0. visit, when not nil,
// is called with each field name, in order, once the line is known good.
//
// It refuses what CheckResponseHead refuses in a header section (names
// that are not tokens directly followed by ':', control characters, bare
// CR, folded lines, duplicate or malformed Content-Length, Content-Length
// with Transfer-Encoding, a Transfer-Encoding not ending in one chunked,
// Transfer-Encoding in HTTP/1.0) and, stricter than for responses, lines
// ending in a bare LF: a client has no excuse, and a proxy behind the
// gateway may frame them differently (RFC 9112 §2.2, §11.2).
//
// An empty fields (a request without header fields) is valid. One linear
// pass; CheckRequestFields allocates nothing when visit does not escape.
func CheckRequestFields(fields []byte, http10 bool, visit func(name []byte)) error {
	if len(fields) == 0 {
		return nil
	}
	f := framing{http10: http10}
	i := 0
	for {
		if i >= len(fields) {
			return ErrRequestIncompleteFields
		}
		switch fields[i] {
		case '\n':
			return ErrRequestBareLF
		case '\r':
			if i+1 < len(fields) && fields[i+1] == '\n' {
				return requestError(f.end(fields, i+2))
			}
			return ErrRequestBadByte
		case ' ', '\t':
			return ErrRequestObsFold
		}
		next, name, err := f.checkRequestLine(fields, i)
		if err != nil {
			return err
		}
		if visit != nil {
			visit(name)
		}
		i = next
	}
}

// checkRequestLine checks the field line at b[i:] and returns where the
// next line starts and the field's name.
func (f *framing) checkRequestLine(b []byte, i int) (next int, name []byte, err error) {
	next, err = f.checkFieldLine(b, i)
	if err != nil {
		return 0, nil, requestError(err)
	}
	if b[next-2] != '\r' {
		return 0, nil, ErrRequestBareLF
	}
	j := i
	for b[j] != ':' {
		j++
	}
	return next, b[i:j], nil
}
