// Package examples holds the example configs; the demo config is embedded
// in the fastgate binary for `fastgate -demo`.
package examples

import _ "embed"

// Demo is the demo config (demo.yaml) that `fastgate -demo` serves.
//
//go:embed demo.yaml
var Demo []byte

// InventoryProto is the demo gRPC inventory service (inventory.proto),
// which cmd/upstream's stub serves and the demo's grpc routes call.
//
//go:embed inventory.proto
var InventoryProto string
