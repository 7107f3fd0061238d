// Package examples holds the example configs; the demo config is embedded
// in the fastgate binary for `fastgate -demo`.
package examples

import _ "embed"

// Demo is the demo config (demo.yaml) that `fastgate -demo` serves.
//
//go:embed demo.yaml
var Demo []byte
