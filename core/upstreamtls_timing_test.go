package core

import "testing"

// BenchmarkProxyTLS is one proxied GET to a loopback target over a
// keep-alive connection, https:// against the http:// baseline: the cost
// of TLS records on a reused connection (the handshake is paid once).
func BenchmarkProxyTLS(b *testing.B) {
	for _, c := range []struct {
		name string
		tls  bool
	}{{"http", false}, {"https", true}} {
		b.Run(c.name, func(b *testing.B) {
			h := newUpstreamHarness(b, benchUpstream, c.tls)
			runClients(b, h.client, "http://gw.local/api/users/42", "GET", nil)
		})
	}
}
