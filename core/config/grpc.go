package config

// GRPC is the grpc terminal: HTTP/JSON requests transcoded to gRPC unary
// calls.
type GRPC struct {
	// Upstream names the upstream of gRPC (h2c) targets. Required.
	Upstream string `json:"upstream" yaml:"upstream"`
}

func (g *GRPC) setDefaults() {}

// validateGRPC checks a route's grpc terminal.
func validateGRPC(errs *Errors, path string, g *GRPC, upstreams, params []string, paramsOK bool) {}
