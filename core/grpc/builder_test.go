package grpc_test

import (
	"strings"
	"testing"

	"fastgate/core"
	"fastgate/core/coretest"
	fgrpc "fastgate/core/grpc"
)

func TestValidate(t *testing.T) {
	f := func(route string, want string) {
		t.Helper()
		cfg := coretest.Config(t, `
upstreams:
  inv: {targets: [{url: "http://127.0.0.1:1"}]}
routes:
  - `+route)
		_, err := core.Compile(cfg, &core.Options{Terminals: []core.TerminalBuilder{&fgrpc.Builder{}}})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if want == "" && got != "" || !strings.Contains(got, want) {
			t.Fatalf("Compile(%s):\ngot  %s\nwant %s", route, got, want)
		}
	}
	const proto = `proto: testdata/test.proto`
	f(`{match: {path: "/e/{s}/{inner}"}, grpc: {upstream: inv, `+proto+`, method: fgtest.v1.Echo/Echo}}`,
		`routes[0]: grpc.method: path parameter {inner}: inner is a message (fgtest.v1.Inner); a path parameter sets a scalar, enum or well-known type field`)
	f(`{match: {path: "/e/{s}/{i32}"}, grpc: {upstream: inv, `+proto+`, method: fgtest.v1.Echo/Echo}}`, "")
	f(`{match: {path: "/lib/{rest:*}"}, grpc: {upstream: inv, `+proto+`, service: fgtest.v1.Library, strip_prefix: /lib}}`, "")
	// The compiler's error, with file:line:column.
	f(`{match: {path: /b}, grpc: {upstream: inv, proto: testdata/broken.proto, method: broken.v1.S/M}}`,
		`routes[0]: grpc.proto: testdata/broken.proto:7:1: syntax error: expecting ';'`)
	f(`{match: {path: /b}, grpc: {upstream: inv, proto: testdata/nope.proto, method: a.S/M}}`,
		`routes[0]: grpc.proto: cannot read the proto: stat testdata/nope.proto: no such file or directory`)
	f(`{match: {path: /b}, grpc: {upstream: inv, proto: testdata/test.proto, import_paths: [/nonexistent], method: a.S/M}}`,
		`routes[0]: grpc.proto: "testdata/test.proto" is in none of the import paths ["/nonexistent"]; add its directory to import_paths`)
	f(`{match: {path: /b}, grpc: {upstream: inv, `+proto+`, method: fgtest.v1.Ecko/Echo}}`,
		`routes[0]: grpc.method: unknown service "fgtest.v1.Ecko"; the proto defines: fgtest.v1.Echo, fgtest.v1.Library`)
	f(`{match: {path: /b}, grpc: {upstream: inv, `+proto+`, method: fgtest.v1.Echo/Ekko}}`,
		`routes[0]: grpc.method: unknown method "fgtest.v1.Echo/Ekko"; service fgtest.v1.Echo has: fgtest.v1.Echo/Echo, fgtest.v1.Echo/Fail, fgtest.v1.Echo/Sleep, fgtest.v1.Echo/Watch`)
	f(`{match: {path: /b}, grpc: {upstream: inv, `+proto+`, method: fgtest.v1.Echo/Watch}}`,
		`routes[0]: grpc.method: fgtest.v1.Echo/Watch is a streaming method; only unary methods are supported`)
	f(`{match: {path: "/b/{skux}"}, grpc: {upstream: inv, `+proto+`, method: fgtest.v1.Library/GetBook}}`,
		`routes[0]: grpc.method: path parameter {skux}: names no field of fgtest.v1.GetBookRequest; its fields: name, view`)
	f(`{match: {path: /b}, grpc: {upstream: inv, `+proto+`, service: fgtest.v1.Echo}}`,
		`routes[0]: grpc.service: no method of fgtest.v1.Echo has a google.api.http annotation; annotate them or use method`)
	f(`{match: {path: /b}, grpc: {upstream: inv, `+proto+`, service: fgtest.v1.Nope}}`,
		`routes[0]: grpc.service: unknown service "fgtest.v1.Nope"; the proto defines: fgtest.v1.Echo, fgtest.v1.Library`)
	f(`{match: {path: /b}, grpc: {upstream: inv, descriptor_set: testdata/nope.pb, method: a.S/M}}`,
		`routes[0]: grpc.descriptor_set: cannot read the descriptor set: open testdata/nope.pb: no such file or directory`)
}
