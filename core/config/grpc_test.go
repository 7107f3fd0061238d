package config

import (
	"reflect"
	"testing"
)

func TestValidateGRPC(t *testing.T) {
	f := func(routes string, want ...string) { t.Helper(); wantProblems(t, routes, want...) }
	f(`routes:
  - match: {path: "/stock/{sku}"}
    grpc:
      upstream: users
      proto: protos/inventory.proto
      import_paths: [protos, third_party]
      method: inventory.v1.Inventory/GetStock
      metadata: [X-Request-ID, Authorization]
      response_metadata: [x-stock-source]
      timeout: 2s
  - match: {path: "/inv/{rest:*}"}
    grpc: {upstream: orders, descriptor_set: inventory.pb, service: inventory.v1.Inventory, strip_prefix: /inv}`)
	f(`routes: [{match: {path: /a}, grpc: {}}]`,
		`routes[0].grpc.upstream: required: name the upstream that serves the route (known: orders, users)`,
		`routes[0].grpc.proto: required: the .proto file of the service ("protos/inventory.proto"), or set descriptor_set`,
		`routes[0].grpc.method: required: the method to call ("package.Service/Method"), or set service to expose a service's annotated methods`)
	f(`routes: [{match: {path: /a}, grpc: {upstream: user, proto: a.proto, descriptor_set: a.pb, method: a.B/C, service: a.B}}]`,
		`routes[0].grpc.upstream: unknown upstream "user" (known: orders, users); did you mean "users"?`,
		`routes[0].grpc.descriptor_set: excludes proto: set one of them`,
		`routes[0].grpc.service: excludes method: set one of them`)
	f(`routes: [{match: {path: /a}, grpc: {upstream: users, descriptor_set: a.pb, import_paths: [x, ""], method: GetStock}}]`,
		`routes[0].grpc.import_paths: only applies with proto, not descriptor_set`,
		`routes[0].grpc.import_paths[1]: must not be empty; write "." for the working directory`,
		`routes[0].grpc.method: "GetStock" is not a method name; write "package.Service/Method", such as "inventory.v1.Inventory/GetStock"`)
	f(`routes: [{match: {path: /a}, grpc: {upstream: users, proto: a.proto, service: "inventory.v1.", strip_prefix: inv}}]`,
		`routes[0].grpc.service: "inventory.v1." is not a service name; write "package.Service", such as "inventory.v1.Inventory"`,
		`routes[0].grpc.strip_prefix: "inv" must start with "/" and not end with it, such as "/inv"`)
	f(`routes: [{match: {path: /a}, grpc: {upstream: users, proto: a.proto, method: a.B/C, strip_prefix: /inv, metadata: ["X Bad", grpc-timeout], response_metadata: ["a:b"]}, timeout: 1s}]`,
		`routes[0].grpc.strip_prefix: only applies with service: a method route's path is the route's own`,
		`routes[0].grpc.metadata[0]: "X Bad" is not a header name: use letters, digits and !#$%&'*+-.^_`+"`"+`|~`,
		`routes[0].grpc.metadata[1]: "grpc-timeout" is reserved by gRPC (grpc-*): pick another name`,
		`routes[0].grpc.response_metadata[0]: "a:b" is not a header name: use letters, digits and !#$%&'*+-.^_`+"`"+`|~`,
		`routes[0].timeout: only applies to a route with an upstream; this route is grpc`)
}

func TestGRPCDefaults(t *testing.T) {
	f := func(grpc string, wantMetadata []string) {
		t.Helper()
		c := mustParse(t, validBase+"routes: [{match: {path: /a}, grpc: "+grpc+"}]", "yaml")
		c.SetDefaults(nil)
		if got := c.Routes[0].GRPC.Metadata; !reflect.DeepEqual(got, wantMetadata) {
			t.Fatalf("grpc %s: metadata got %q; want %q", grpc, got, wantMetadata)
		}
	}
	f(`{upstream: users, proto: a.proto, method: a.B/C}`, []string{"X-Request-ID"})
	f(`{upstream: users, proto: a.proto, method: a.B/C, metadata: []}`, []string{})
	f(`{upstream: users, proto: a.proto, method: a.B/C, metadata: [Authorization]}`, []string{"Authorization"})
}
