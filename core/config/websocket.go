package config

import "fmt"

// WebSocket lets a proxied route carry WebSocket connections: an
// "Upgrade: websocket" request is forwarded to a target the balancer
// picks, and once it answers 101 the gateway copies bytes both ways.
type WebSocket struct {
	// IdleTimeout closes a WebSocket connection on which neither side sent
	// anything for this long. Default 10m. Ping frames count as traffic.
	IdleTimeout Duration `json:"idle_timeout" yaml:"idle_timeout"`
}

// DefaultWebSocketIdleTimeout is websocket.idle_timeout's default.
const DefaultWebSocketIdleTimeout = Duration(10 * 60 * 1e9)

func (w *WebSocket) setDefaults() {
	setZero(&w.IdleTimeout, DefaultWebSocketIdleTimeout)
}

// Route protocols.
const (
	ProtocolHTTP = "http"
	ProtocolGRPC = "grpc"
)

// validateProtocol checks a route's protocol.
func validateProtocol(errs *Errors, path string, r *Route) {
	switch r.Protocol {
	case "", ProtocolHTTP:
	case ProtocolGRPC:
		if r.Terminal() != "" && r.Terminal() != TerminalProxy {
			errs.add(path, fmt.Sprintf("grpc passthrough needs a route with an upstream; this route is %s (for JSON to gRPC, use the grpc terminal)", r.Terminal()))
		}
		if r.WebSocket != nil {
			errs.add(path, "grpc and websocket exclude each other")
		}
	default:
		errs.add(path, fmt.Sprintf("%q: want http or grpc", r.Protocol))
	}
}

// validateWebSocket checks a route's websocket settings.
func validateWebSocket(errs *Errors, path string, r *Route) {
	if r.WebSocket == nil {
		return
	}
	if r.Terminal() != "" && r.Terminal() != TerminalProxy {
		errs.add(path, fmt.Sprintf("only applies to a route with an upstream; this route is %s", r.Terminal()))
	}
	positiveDuration(errs, path+".idle_timeout", r.WebSocket.IdleTimeout)
}
