package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fastgate/cmd/upstream/stub"
)

// inventoryProto returns the absolute path of examples/inventory.proto.
func inventoryProto(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "examples", "inventory.proto")
}

// TestGRPC runs fastgate with grpc routes to the demo inventory service
// (a grpc-go server in the test process): a GET and a POST transcoded, by
// method and by a service's google.api.http annotations, and a NOT_FOUND
// answered as a 404 JSON error.
func TestGRPC(t *testing.T) {
	stop, addr, err := stub.StartGRPCInventory("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	proto := inventoryProto(t)
	g := startGateway(t, `
upstreams:
  inventory: {targets: [{url: "http://`+addr+`"}]}
routes:
  - name: stock
    match: {path: "/api/stock/{sku}", methods: [GET]}
    grpc: {upstream: inventory, proto: "`+proto+`", method: inventory.v1.Inventory/GetStock, response_metadata: [x-stock-source]}
  - name: inventory
    match: {path: "/inv/{rest:*}"}
    grpc: {upstream: inventory, proto: "`+proto+`", service: inventory.v1.Inventory, strip_prefix: /inv, timeout: 2s}
`)
	f := func(method, path, body string, status int, want string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+g.addr+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-ID", "rid-grpc")
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %s; stderr:\n%s", method, path, err, g.stderr.String())
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status {
			t.Fatalf("%s %s: got %d; want %d; body %s", method, path, resp.StatusCode, status, got)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: got Content-Type %q; want application/json", method, path, ct)
		}
		var gv, wv any
		if err := json.Unmarshal(got, &gv); err != nil {
			t.Fatalf("%s %s: body %s: %s", method, path, got, err)
		}
		if err := json.Unmarshal([]byte(want), &wv); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(gv)
		wb, _ := json.Marshal(wv)
		if string(gb) != string(wb) {
			t.Fatalf("%s %s: got body\n%s\nwant\n%s", method, path, gb, wb)
		}
	}
	f("GET", "/api/stock/sku-1002?warehouse=east", "", 200,
		`{"sku":"sku-1002","name":"Ultrawide monitor","available":10,"warehouse":"east","updated_at":"2026-01-02T03:04:05Z"}`)
	f("GET", "/inv/v1/stock/sku-1003", "", 200,
		`{"sku":"sku-1003","name":"Wireless mouse","available":20,"warehouse":"all","updated_at":"2026-01-02T03:04:05Z"}`)
	f("POST", "/inv/v1/stock/sku-1003:reserve", `{"quantity":5}`, 200,
		`{"id":"res-1","sku":"sku-1003","quantity":5,"remaining":15}`)
	f("GET", "/api/stock/sku-9999", "", 404,
		`{"error":"no stock record for SKU \"sku-9999\"","code":"NOT_FOUND","status":404,"request_id":"rid-grpc"}`)
	f("POST", "/inv/v1/stock/sku-1001:reserve", `{"quantity":1}`, 400,
		`{"error":"not enough stock","code":"FAILED_PRECONDITION","status":400,"request_id":"rid-grpc",
		  "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"OUT_OF_STOCK","domain":"inventory.example.com","metadata":{"available":"0","sku":"sku-1001"}}]}`)
	f("POST", "/inv/v1/stock/sku-1001:reserve", `{"quantity":"many"}`, 400,
		`{"error":"request body: (line 1:13): invalid value for int32 field quantity: \"many\"","code":"INVALID_ARGUMENT","status":400,"request_id":"rid-grpc"}`)
	r := g.get(t, "/api/stock/sku-1001")
	if got := r.header.Get("X-Stock-Source"); got != "stub" {
		t.Fatalf("GET /api/stock/sku-1001: X-Stock-Source got %q; want stub (response_metadata)", got)
	}
}

// TestGRPCCheck runs fastgate -check on grpc routes with a proto that
// does not compile and an unknown method.
func TestGRPCCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.proto")
	if err := os.WriteFile(bad, []byte("syntax = \"proto3\";\npackage bad.v1;\nmessage M {\n  string name = 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// core.Compile stops at a route's first feature error: one config
	// each.
	stderr := checkRejects(t, `
listen: "127.0.0.1:0"
upstreams:
  inventory: {targets: [{url: "http://127.0.0.1:19106"}]}
routes:
  - name: broken
    match: {path: /a}
    grpc: {upstream: inventory, proto: "`+bad+`", method: bad.v1.S/M}
`)
	wantProblem(t, stderr, "routes[0]", "grpc.proto: "+bad+":5:1: syntax error: expecting ';'")
	stderr = checkRejects(t, `
listen: "127.0.0.1:0"
upstreams:
  inventory: {targets: [{url: "http://127.0.0.1:19106"}]}
routes:
  - name: ok
    match: {path: "/a/{sku}"}
    grpc: {upstream: inventory, proto: "`+inventoryProto(t)+`", method: inventory.v1.Inventory/GetStock}
  - name: unknown
    match: {path: "/b/{sku}"}
    grpc: {upstream: inventory, proto: "`+inventoryProto(t)+`", method: inventory.v1.Inventory/GetStok}
`)
	wantProblem(t, stderr, "routes[1]", `grpc.method: unknown method "inventory.v1.Inventory/GetStok"; service inventory.v1.Inventory has: inventory.v1.Inventory/GetStock, inventory.v1.Inventory/ListStock, inventory.v1.Inventory/Reserve`)
}
