package core

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"

	"github.com/valyala/fasthttp"

	"fastgate/core/config"
)

// certSet is the certificates of one snapshot, indexed for SNI. It is
// immutable; a reload builds a new one, so replaced certificate files are
// served from the next handshake on.
type certSet struct {
	exact map[string]*tls.Certificate // lower-cased DNS name
	wild  map[string]*tls.Certificate // "example.com" for "*.example.com"
	first *tls.Certificate
}

// loadCerts reads the certificate files of c; nil when TLS is off.
func loadCerts(c *config.TLS) (*certSet, error) {
	if !c.Enabled() {
		return nil, nil
	}
	cs := &certSet{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for i, pair := range c.Certs {
		cert, err := tls.LoadX509KeyPair(pair.Cert, pair.Key)
		if err != nil {
			return nil, fmt.Errorf("tls.certs[%d]: %w (want PEM files: cert %q with the chain leaf first, key %q)", i, err, pair.Cert, pair.Key)
		}
		leaf := cert.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
				return nil, fmt.Errorf("tls.certs[%d]: %w", i, err)
			}
		}
		names := leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			m := cs.exact
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				n, m = rest, cs.wild
			}
			// The first certificate listed for a name wins.
			if m[n] == nil {
				m[n] = &cert
			}
		}
		if cs.first == nil {
			cs.first = &cert
		}
	}
	return cs, nil
}

// get selects the certificate for an SNI name: exact, then the wildcard of
// the parent domain, then the first certificate.
func (cs *certSet) get(name string) *tls.Certificate {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if c := cs.exact[name]; c != nil {
		return c
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c := cs.wild[parent]; c != nil {
			return c
		}
	}
	return cs.first
}

// tlsConfig returns the listener's TLS config. Certificates are looked up
// in the snapshot serving at handshake time.
func (g *Gateway) tlsConfig() *tls.Config {
	minVersion := uint16(tls.VersionTLS12)
	if g.snap.Load().cfg.TLS.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	protos := []string{"http/1.1"}
	if g.snap.Load().cfg.Server.HTTP2 {
		protos = []string{"h2", "http/1.1"}
	}
	return &tls.Config{
		MinVersion: minVersion,
		NextProtos: protos,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			cs := g.snap.Load().certs
			if cs == nil {
				return nil, fmt.Errorf("fastgate: TLS is off in the current config")
			}
			return cs.get(hello.ServerName), nil
		},
	}
}

// newRedirectServer answers every request with a 308 to the same URL on
// https, at the port of the TLS listener (omitted when 443).
func newRedirectServer(tlsListen string, s *fasthttp.Server) *fasthttp.Server {
	_, port, _ := net.SplitHostPort(tlsListen)
	suffix := ""
	if port != "443" && port != "" {
		suffix = ":" + port
	}
	return &fasthttp.Server{
		Name:                  "fastgate",
		NoDefaultServerHeader: true,
		ReadTimeout:           s.ReadTimeout,
		WriteTimeout:          s.WriteTimeout,
		IdleTimeout:           s.IdleTimeout,
		CloseOnShutdown:       true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			host := ctx.Host()
			if h, _, err := net.SplitHostPort(string(host)); err == nil {
				host = []byte(h)
			}
			if len(host) == 0 || bytes.ContainsAny(host, "/\\@") {
				ctx.Error("missing or bad Host header", fasthttp.StatusBadRequest)
				return
			}
			loc := make([]byte, 0, 64)
			loc = append(loc, "https://"...)
			loc = append(loc, host...)
			loc = append(loc, suffix...)
			loc = append(loc, ctx.RequestURI()...)
			ctx.Response.Header.SetBytesV(fasthttp.HeaderLocation, loc)
			ctx.SetStatusCode(fasthttp.StatusPermanentRedirect)
		},
	}
}
