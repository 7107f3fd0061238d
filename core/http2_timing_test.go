package core

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// BenchmarkH2C measures a GET through the gateway over cleartext HTTP/2
// against the same GET over HTTP/1.1 on the same h2c-enabled port: client,
// gateway and a fasthttp upstream in one process on loopback TCP, so
// ns/op and allocs/op count all three (the HTTP/2 client allocates too).
func BenchmarkH2C(b *testing.B) {
	up, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	usrv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.WriteString(`{"id":1}`) }} //nolint:errcheck
	go usrv.Serve(up)                                                                                 //nolint:errcheck
	defer usrv.Shutdown()                                                                             //nolint:errcheck
	gw, err := New(mustConfig(b, `
listen: "127.0.0.1:0"
server: {h2c: true}
upstreams:
  u: {targets: [{url: "http://`+up.Addr().String()+`"}]}
routes:
  - {match: {path: "/{p:*}"}, upstream: u}
`), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go gw.Serve(ln) //nolint:errcheck
	defer shutdown(gw)
	url := "http://" + ln.Addr().String() + "/x"
	b.Run("http2", func(b *testing.B) {
		c := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := c.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body) //nolint:errcheck
				resp.Body.Close()
			}
		})
	})
	b.Run("http1.1", func(b *testing.B) {
		c := &fasthttp.Client{}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for pb.Next() {
				req.SetRequestURI(url)
				if err := c.Do(req, resp); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
