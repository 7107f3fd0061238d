package config

import (
	"fmt"
	"strings"
)

// GRPC is the grpc terminal: HTTP/JSON requests transcoded to gRPC unary
// calls, and their answers back to JSON.
//
//	grpc:
//	  upstream: inventory
//	  proto: examples/inventory.proto
//	  method: inventory.v1.Inventory/GetStock
//	  metadata: [X-Request-ID, Authorization]
//	  timeout: 2s
//
// The proto is compiled (or the descriptor set read) when the config is
// loaded, checked and built; the checks that need it (the method exists
// and is unary, path parameters name fields) run there, not here.
type GRPC struct {
	// Upstream names the upstream whose targets serve gRPC over h2c
	// (cleartext HTTP/2, "http://host:port" targets), with its balancing,
	// retries, health, circuit breaker and metrics. Required.
	Upstream string `json:"upstream" yaml:"upstream"`

	// Proto is the path of the .proto file that defines the service,
	// relative to the working directory. It is compiled at load time;
	// the well-known types (google/protobuf/*.proto) and
	// google/api/annotations.proto and google/api/http.proto resolve
	// without files. One of Proto and DescriptorSet is required.
	Proto string `json:"proto" yaml:"proto"`

	// ImportPaths are the directories the proto's imports resolve in (as
	// protoc's -I), relative to the working directory; Proto must lie in
	// one of them. Default: Proto's directory. Only with Proto.
	ImportPaths []string `json:"import_paths" yaml:"import_paths"`

	// DescriptorSet is the path of a binary FileDescriptorSet (protoc
	// --include_imports -o FILE), instead of Proto. Default none.
	DescriptorSet string `json:"descriptor_set" yaml:"descriptor_set"`

	// Method is the one method the route calls, "package.Service/Method"
	// ("inventory.v1.Inventory/GetStock"). Its request message is built
	// from the JSON body (POST, PUT, PATCH), then the route's path
	// parameters and the query arguments set fields by name. A
	// google.api.http annotation on the method decides its body and
	// response_body. One of Method and Service is required.
	Method string `json:"method" yaml:"method"`

	// Service exposes every method of this service ("package.Service")
	// that has a google.api.http annotation: a request is matched by the
	// annotations' methods and path templates, against the request path
	// less StripPrefix. One of Method and Service is required.
	Service string `json:"service" yaml:"service"`

	// StripPrefix is removed from the start of the request path before it
	// is matched against the annotations' templates, so that a route
	// matching "/inv/{rest:*}" serves "/inv/v1/stock/{sku}" with the
	// template "/v1/stock/{sku}". Default "": the whole path is matched.
	// Only with Service.
	StripPrefix string `json:"strip_prefix" yaml:"strip_prefix"`

	// Metadata are the request headers sent as gRPC metadata (an
	// allow-list; names are lowercased on the way). Default
	// [X-Request-ID]; an empty list sends none.
	Metadata []string `json:"metadata" yaml:"metadata"`

	// ResponseMetadata are the gRPC response metadata keys (headers and
	// trailers) sent back as response headers (an allow-list). Default
	// none.
	ResponseMetadata []string `json:"response_metadata" yaml:"response_metadata"`

	// Timeout is the call's deadline, sent as grpc-timeout and enforced
	// by the gateway, retries included. Default (zero): the upstream's
	// timeouts.request.
	Timeout Duration `json:"timeout" yaml:"timeout"`
}

// DefaultGRPCMetadata is the default of GRPC.Metadata.
var DefaultGRPCMetadata = []string{"X-Request-ID"}

func (g *GRPC) setDefaults() {
	if g.Metadata == nil {
		g.Metadata = append([]string(nil), DefaultGRPCMetadata...)
	}
}

// validateGRPC checks a route's grpc terminal: what the config alone
// tells. The proto itself is compiled by the terminal's builder.
func validateGRPC(errs *Errors, path string, g *GRPC, upstreams, params []string, paramsOK bool) {
	validateRouteUpstream(errs, path+".upstream", g.Upstream, upstreams)
	switch {
	case g.Proto == "" && g.DescriptorSet == "":
		errs.add(path+".proto", `required: the .proto file of the service ("protos/inventory.proto"), or set descriptor_set`)
	case g.Proto != "" && g.DescriptorSet != "":
		errs.add(path+".descriptor_set", "excludes proto: set one of them")
	}
	if g.DescriptorSet != "" && len(g.ImportPaths) > 0 {
		errs.add(path+".import_paths", "only applies with proto, not descriptor_set")
	}
	for i, p := range g.ImportPaths {
		if p == "" {
			errs.add(pathIndex(path+".import_paths", i), "must not be empty; write \".\" for the working directory")
		}
	}
	switch {
	case g.Method == "" && g.Service == "":
		errs.add(path+".method", `required: the method to call ("package.Service/Method"), or set service to expose a service's annotated methods`)
	case g.Method != "" && g.Service != "":
		errs.add(path+".service", "excludes method: set one of them")
	case g.Method != "":
		svc, m, ok := strings.Cut(g.Method, "/")
		if !ok || !validFullName(svc) || !validIdent(m) {
			errs.add(path+".method", fmt.Sprintf(`%q is not a method name; write "package.Service/Method", such as "inventory.v1.Inventory/GetStock"`, g.Method))
		}
	case !validFullName(g.Service):
		errs.add(path+".service", fmt.Sprintf(`%q is not a service name; write "package.Service", such as "inventory.v1.Inventory"`, g.Service))
	}
	if g.StripPrefix != "" {
		switch {
		case g.Service == "":
			errs.add(path+".strip_prefix", "only applies with service: a method route's path is the route's own")
		case !strings.HasPrefix(g.StripPrefix, "/") || strings.HasSuffix(g.StripPrefix, "/"):
			errs.add(path+".strip_prefix", fmt.Sprintf(`%q must start with "/" and not end with it, such as "/inv"`, g.StripPrefix))
		}
	}
	validateHeaderList(errs, path+".metadata", g.Metadata)
	validateHeaderList(errs, path+".response_metadata", g.ResponseMetadata)
}

// validateHeaderList checks a list of header (metadata) names.
func validateHeaderList(errs *Errors, path string, names []string) {
	for i, n := range names {
		p := pathIndex(path, i)
		switch {
		case !validToken(n):
			errs.add(p, fmt.Sprintf("%q is not a header name: use letters, digits and !#$%%&'*+-.^_`|~", n))
		case strings.HasPrefix(strings.ToLower(n), "grpc-"):
			errs.add(p, fmt.Sprintf("%q is reserved by gRPC (grpc-*): pick another name", n))
		}
	}
}

// validFullName reports whether s is a dotted protobuf name, "a.b.C".
func validFullName(s string) bool {
	if s == "" {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if !validIdent(part) {
			return false
		}
	}
	return true
}

// validIdent reports whether s is a protobuf identifier.
func validIdent(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
