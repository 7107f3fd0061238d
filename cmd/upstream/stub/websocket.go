package stub

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// A minimal RFC 6455 WebSocket: the stub echoes the messages of any
// "Upgrade: websocket" request (text, binary, ping as pong, close as
// close), and WSConn is a client for tests and checks. Messages are single
// frames of at most 1 MiB; no extensions.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocket opcodes.
const (
	WSText   = 0x1
	WSBinary = 0x2
	WSClose  = 0x8
	WSPing   = 0x9
	WSPong   = 0xA
)

const wsMaxPayload = 1 << 20

// wsAccept is the Sec-WebSocket-Accept of key.
func wsAccept(key []byte) string {
	h := sha1.Sum(append(append([]byte(nil), key...), wsGUID...))
	return base64.StdEncoding.EncodeToString(h[:])
}

// serveWebSocket answers a WebSocket upgrade and echoes until the client
// closes; false when the request is no upgrade.
func (s *Server) serveWebSocket(ctx *fasthttp.RequestCtx) bool {
	h := &ctx.Request.Header
	if !bytes.EqualFold(h.Peek("Upgrade"), []byte("websocket")) {
		return false
	}
	key := h.Peek("Sec-WebSocket-Key")
	if len(key) == 0 {
		ctx.Error("missing Sec-WebSocket-Key", fasthttp.StatusBadRequest)
		return true
	}
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	ctx.Response.Header.Set("Upgrade", "websocket")
	ctx.Response.Header.Set("Connection", "Upgrade")
	ctx.Response.Header.Set("Sec-WebSocket-Accept", wsAccept(key))
	ctx.Hijack(func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			op, payload, err := readFrame(br)
			if err != nil {
				return
			}
			switch op {
			case WSClose:
				writeFrame(c, WSClose, payload, false) //nolint:errcheck
				return
			case WSPing:
				op = WSPong
			case WSPong:
				continue
			}
			if writeFrame(c, op, payload, false) != nil {
				return
			}
		}
	})
	return true
}

// readFrame reads one frame, unmasking it.
func readFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 {
		return 0, nil, errors.New("stub: fragmented WebSocket frames are not supported")
	}
	op = h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > wsMaxPayload {
		return 0, nil, fmt.Errorf("stub: WebSocket frame of %d bytes", n)
	}
	var mask [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err = io.ReadFull(br, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return op, payload, nil
}

// writeFrame writes one final frame; clients mask theirs (RFC 6455 §5.3).
func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	b := make([]byte, 0, 14+len(payload))
	b = append(b, 0x80|op)
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !mask {
		_, err := w.Write(append(b, payload...))
		return err
	}
	var k [4]byte
	rand.Read(k[:]) //nolint:errcheck
	b = append(b, k[:]...)
	for i, c := range payload {
		b = append(b, c^k[i%4])
	}
	_, err := w.Write(b)
	return err
}

// WSConn is a WebSocket client connection.
type WSConn struct {
	c  net.Conn
	br *bufio.Reader
	// Header is the 101 response's head.
	Header string
}

// DialWS opens a WebSocket to ws://addr+path, with extra request header
// lines ("Name: value").
func DialWS(addr, path string, timeout time.Duration, headers ...string) (*WSConn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return HandshakeWS(c, addr, path, timeout, headers...)
}

// HandshakeWS opens a WebSocket on c, a connection to host; c is closed
// when it fails.
func HandshakeWS(c net.Conn, addr, path string, timeout time.Duration, headers ...string) (*WSConn, error) {
	var key [16]byte
	rand.Read(key[:]) //nolint:errcheck
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + k + "\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	c.SetDeadline(time.Now().Add(timeout)) //nolint:errcheck
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReader(c)
	var head fasthttp.ResponseHeader
	if err := head.Read(br); err != nil {
		c.Close()
		return nil, err
	}
	if head.StatusCode() != fasthttp.StatusSwitchingProtocols || string(head.Peek("Sec-WebSocket-Accept")) != wsAccept([]byte(k)) {
		c.Close()
		return nil, fmt.Errorf("stub: WebSocket upgrade answered %d, Sec-WebSocket-Accept %q", head.StatusCode(), head.Peek("Sec-WebSocket-Accept"))
	}
	c.SetDeadline(time.Time{}) //nolint:errcheck
	return &WSConn{c: c, br: br, Header: head.String()}, nil
}

// Send writes a masked message of opcode op.
func (w *WSConn) Send(op byte, payload []byte) error { return writeFrame(w.c, op, payload, true) }

// Receive reads one message within timeout.
func (w *WSConn) Receive(timeout time.Duration) (op byte, payload []byte, err error) {
	w.c.SetReadDeadline(time.Now().Add(timeout)) //nolint:errcheck
	return readFrame(w.br)
}

// Close sends a close frame and closes the connection.
func (w *WSConn) Close() error {
	w.Send(WSClose, []byte{0x03, 0xe8}) //nolint:errcheck // 1000: normal closure
	return w.c.Close()
}
