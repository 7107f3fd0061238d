package core

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"fastgate/core/config"
)

// TLS to upstreams: a target written "https://host[:port]" is reached over
// TLS with the upstream's tls block (config.UpstreamTLS). The handshake is
// part of connecting: it happens when a pool dials, bounded by
// timeouts.connect, so a request on a pooled keep-alive connection does no
// more than encrypt and decrypt. A handshake that fails is a connect
// failure (502, retried on another target when retries.on has
// connect_error, counted by passive health), and its reason is logged at
// most once a minute per target.

// Errors of a failed upstream handshake.
var (
	errUpstreamCert = &Error{502, errors.New("upstream TLS certificate verification failed; the gateway log says why")}
	errUpstreamTLS  = &Error{502, errors.New("upstream TLS handshake failed; the gateway log says why")}
)

// tlsLogInterval is the least time between two logged handshake failures
// of one target.
const tlsLogInterval = time.Minute

// upstreamTLS is the compiled tls block of an upstream: the client config
// its https targets derive theirs from.
type upstreamTLS struct {
	base       *tls.Config
	serverName string // config's; "": each target's host
	insecure   bool
	// key fingerprints the settings and the files' contents: a target
	// whose key changed gets a new pool.
	key string
}

// compileUpstreamTLS reads u's tls block; nil when u has no https target.
func compileUpstreamTLS(u *config.Upstream) (*upstreamTLS, error) {
	if !hasTLSTarget(u.Targets) {
		return nil, nil
	}
	tc := u.TLS
	if tc == nil {
		tc = &config.UpstreamTLS{}
	}
	files, err := tc.Load()
	if err != nil {
		return nil, fmt.Errorf("tls.%w", err)
	}
	base := &tls.Config{
		RootCAs:            files.Roots,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: tc.InsecureSkipVerify, //nolint:gosec // the operator's explicit choice, warned about at load
	}
	if tc.MinVersion == "1.3" {
		base.MinVersion = tls.VersionTLS13
	}
	if files.Cert != nil {
		base.Certificates = []tls.Certificate{*files.Cert}
	}
	return &upstreamTLS{
		base:       base,
		serverName: tc.ServerName,
		insecure:   tc.InsecureSkipVerify,
		key:        fmt.Sprintf("|tls %+v %x", *tc, files.Sum),
	}, nil
}

func hasTLSTarget(targets []config.Target) bool {
	for _, t := range targets {
		if t.TLS() {
			return true
		}
	}
	return false
}

// targetTLS is how the gateway speaks TLS to one https target: the config
// of its HTTP/1.1 pool (ALPN http/1.1), the config and HTTP/2 transport of
// gRPC (ALPN h2), and the rate limit of its failure logs. It is immutable
// but for the logger and the log clock, and safe for concurrent use.
type targetTLS struct {
	h1, h2   *tls.Config
	h2t      *http2.Transport
	upstream string
	addr     string
	log      atomic.Pointer[slog.Logger]
	lastLog  atomic.Int64 // unix nanos of the last logged failure
}

// target returns the TLS of the target at addr of upstream name: nil for an
// http target. idle closes the gRPC transport's idle connections.
func (ut *upstreamTLS) target(name, addr string, isTLS bool, idle time.Duration) *targetTLS {
	if ut == nil || !isTLS {
		return nil
	}
	host, _, _ := net.SplitHostPort(addr)
	serverName := ut.serverName
	if serverName == "" {
		serverName = host
	}
	// Each target resumes its own sessions: a cache shared by targets
	// that share a server name would have them evict each other's.
	cache := tls.NewLRUClientSessionCache(0)
	h1 := ut.base.Clone()
	h1.ServerName, h1.NextProtos, h1.ClientSessionCache = serverName, []string{"http/1.1"}, cache
	h2 := ut.base.Clone()
	h2.ServerName, h2.NextProtos, h2.ClientSessionCache = serverName, []string{"h2"}, cache
	return &targetTLS{
		h1:       h1,
		h2:       h2,
		h2t:      &http2.Transport{TLSClientConfig: h2, IdleConnTimeout: idle},
		upstream: name,
		addr:     addr,
	}
}

// handshake makes conn a TLS client connection to the target before
// deadline (ALPN http/1.1). On failure conn is closed; a failure other than
// a timeout is a *tlsError, and is logged.
func (tt *targetTLS) handshake(conn net.Conn, deadline time.Time) (net.Conn, error) {
	tc := tls.Client(conn, tt.h1)
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, err
	}
	if err := tc.Handshake(); err != nil {
		conn.Close()
		if isTimeout(err) {
			return nil, err
		}
		return nil, tt.failed(err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		tc.Close()
		return nil, err
	}
	return &tlsConn{Conn: tc}, nil
}

// tlsConn is a TLS connection to a target that keeps its last read error:
// with TLS 1.3 a target that rejects the gateway's client certificate
// does so after the client's handshake has completed, with an alert that
// the first read of a response meets, and that fasthttp's header reader
// hides.
type tlsConn struct {
	*tls.Conn
	readErr error
}

func (c *tlsConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.readErr = err
	}
	return n, err
}

// alerted returns the response to a failed read of a response on conn
// when the target sent a TLS alert (and logs it as failed does); nil for
// any other failure, and for an http target (nil tt).
func (tt *targetTLS) alerted(conn net.Conn) *Error {
	c, ok := conn.(*tlsConn)
	if tt == nil || !ok || !isRemoteAlert(c.readErr) {
		return nil
	}
	return tt.failed(c.readErr).gatewayError()
}

// isRemoteAlert reports whether err is a TLS alert the peer sent.
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// dial opens a TLS connection to the target with dial (TCP when nil),
// connecting and handshaking within timeout.
func (tt *targetTLS) dial(dial func(string) (net.Conn, error), timeout time.Duration) (net.Conn, error) {
	deadline := time.Now().Add(timeout)
	var conn net.Conn
	var err error
	if dial != nil {
		conn, err = dial(tt.addr)
	} else {
		conn, err = net.DialTimeout("tcp", tt.addr, timeout)
	}
	if err != nil {
		return nil, err
	}
	return tt.handshake(conn, deadline)
}

// tlsError is a failed upstream handshake.
type tlsError struct {
	addr string
	err  error
}

func (e *tlsError) Error() string {
	return "TLS handshake with " + e.addr + ": " + e.err.Error()
}

func (e *tlsError) Unwrap() error { return e.err }

// gatewayError is the response to a request that met e.
func (e *tlsError) gatewayError() *Error {
	var ve *tls.CertificateVerificationError
	if errors.As(e.err, &ve) {
		return errUpstreamCert
	}
	return errUpstreamTLS
}

// failed wraps a handshake failure and logs it, at most once per
// tlsLogInterval: a target with a bad certificate fails every connection
// of every request.
func (tt *targetTLS) failed(err error) *tlsError {
	te := &tlsError{addr: tt.addr, err: err}
	now := time.Now().UnixNano()
	last := tt.lastLog.Load()
	if last != 0 && now-last < int64(tlsLogInterval) || !tt.lastLog.CompareAndSwap(last, now) {
		return te
	}
	log := tt.log.Load()
	if log == nil {
		log = slog.Default()
	}
	msg := "upstream TLS handshake failed"
	hint := "check the target's certificate chain, upstream tls.ca_file and tls.server_name"
	if te.gatewayError() != errUpstreamCert {
		hint = "is the target serving TLS on this port? does it want a client certificate (tls.cert_file)?"
	}
	log.Warn(msg, "upstream", tt.upstream, "target", tt.addr, "error", err.Error(), "hint", hint, "next_log_after", tlsLogInterval.String())
	return te
}

// handshakeFailed reports whether err, from a dial of the gRPC transport,
// is a failed TLS handshake, and logs it as failed does. A nil tt (an
// http target) reports false.
func (tt *targetTLS) handshakeFailed(err error) bool {
	if tt == nil {
		return false
	}
	var (
		ve *tls.CertificateVerificationError
		ae tls.AlertError
		re tls.RecordHeaderError
	)
	if errors.As(err, &ve) || errors.As(err, &ae) || errors.As(err, &re) || isRemoteAlert(err) {
		tt.failed(err)
		return true
	}
	return false
}

// UpstreamTLSError is the gateway's error for err, a failed TLS handshake
// with a target: a 502 that says whether the certificate did not verify or
// the handshake failed otherwise. For terminals with connections of their
// own (gRPC), as core.Outcome.Err.
func UpstreamTLSError(err error) *Error {
	return (&tlsError{err: err}).gatewayError()
}

// tlsGatewayError returns the response to a dial error that is a failed
// handshake, nil for another error.
func tlsGatewayError(err error) *Error {
	var te *tlsError
	if errors.As(err, &te) {
		return te.gatewayError()
	}
	return nil
}

// startTLS hands the gateway's logger to up's https targets and warns when
// their certificates go unverified. The gateway calls it whenever a
// snapshot with up becomes current.
func (up *Upstream) startTLS(log *slog.Logger) {
	if up.tls == nil {
		return
	}
	for _, t := range up.targets {
		if t.tls != nil {
			t.tls.log.Store(log)
		}
	}
	if up.tls.insecure {
		log.Warn("upstream TLS certificates are not verified (tls.insecure_skip_verify): anyone on the path can read and change its traffic; use tls.ca_file instead",
			"upstream", up.name)
	}
}

// TargetTLS returns the TLS client config of HTTP/2 (ALPN h2) for the
// upstream's target at addr, nil when the target is http:// or unknown. It
// is the same config as long as the target's settings and files are
// unchanged; callers must not modify it. For gRPC terminals.
func (up *Upstream) TargetTLS(addr string) *tls.Config {
	if t := up.target(addr); t != nil && t.tls != nil {
		return t.tls.h2
	}
	return nil
}

// TargetTLSFailures returns what a gRPC terminal hands the errors of its
// own TLS connections to the target at addr (handshakes, and reads: under
// TLS 1.3 a target refusing the client certificate alerts after the
// client's handshake). It reports whether an error is a failed handshake
// and logs those as the pools' are, at most once a minute per target. Nil
// when the target is http:// or unknown; safe for concurrent use.
func (up *Upstream) TargetTLSFailures(addr string) func(error) bool {
	if t := up.target(addr); t != nil && t.tls != nil {
		return t.tls.handshakeFailed
	}
	return nil
}
