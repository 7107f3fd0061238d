package main

import (
	"strings"
	"testing"

	"fastgate/cmd/upstream/stub"
)

// TestSOAP runs fastgate with soap routes over the SOAP demo served by
// the test process: a conversion in SOAP 1.1 and 1.2, a list with
// attributes, and faults turned into JSON.
func TestSOAP(t *testing.T) {
	stop, addr, err := stub.StartSOAPDemo("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	g := startGateway(t, strings.ReplaceAll(`
upstreams:
  currency: {targets: [{url: "http://{{soap}}"}], retries: {attempts: 1}}
routes:
  - name: convert
    match: {path: "/api/convert/{from}/{to}", methods: [GET]}
    soap:
      upstream: currency
      path: /soap/currency
      action: "http://example.com/currency/Convert"
      template: <Convert xmlns="http://example.com/currency"><From>{from}</From><To>{to}</To><Amount>{query.amount}</Amount></Convert>
      response: {path: ConvertResponse.Result}
      fault_map: {"soap:Client": 400}
  - name: convert12
    match: {path: "/api/v12/convert/{from}/{to}", methods: [GET]}
    soap:
      upstream: currency
      path: /soap/currency
      version: "1.2"
      template: <Convert xmlns="http://example.com/currency"><From>{from}</From><To>{to}</To><Amount>{query.amount}</Amount></Convert>
  - name: rates
    match: {path: /api/rates, methods: [GET]}
    soap: {upstream: currency, path: /soap/currency, template: <ListRates xmlns="http://example.com/currency"/>}
`, "{{soap}}", addr))
	f := func(path string, status int, body string) {
		t.Helper()
		r := g.get(t, path)
		if r.status != status || !strings.HasPrefix(string(r.body), body) {
			t.Fatalf("GET %s: got %d %s; want %d %s", path, r.status, r.body, status, body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("GET %s: Content-Type got %q; want application/json", path, ct)
		}
	}
	f("/api/convert/EUR/USD?amount=10", 200, "\"11.00\"\n")
	f("/api/v12/convert/USD/EUR?amount=11", 200, `{"Result":"10.00","Rate":"0.909091"}`+"\n")
	f("/api/rates", 200, `{"@base":"EUR","Rate":[{"@currency":"EUR","#text":"1"},{"@currency":"USD","#text":"1.1"},{"@currency":"GBP","#text":"0.85"},{"@currency":"JPY","#text":"160"}]}`+"\n")
	f("/api/convert/EUR/XXX?amount=10", 400, `{"error":"unknown currency","fault_code":"soap:Client","detail":{"InvalidValue":"XXX"},"status":400,"request_id":"`)
	f("/api/v12/convert/EUR/USD?amount=%3C-1%3E", 502, `{"error":"the amount is not a non-negative number","fault_code":"soap:Sender","detail":{"InvalidValue":"<-1>"},"status":502,"request_id":"`)
}

// TestSOAPCheck: fastgate -check reports a bad template at its path.
func TestSOAPCheck(t *testing.T) {
	stderr := checkRejects(t, `
upstreams:
  currency: {targets: [{url: "http://127.0.0.1:1"}]}
routes:
  - match: {path: "/c/{from}"}
    soap: {upstream: currency, path: /soap, template: "<Convert><From>{from}</Convert>"}
  - match: {path: "/d/{from}"}
    soap: {upstream: currency, path: /soap, version: "1.3", template: "<Convert>{to}</Convert>"}
`)
	wantProblem(t, stderr, "routes[0].soap.template", "is not well-formed XML (line 1 of the template, placeholders replaced): element <From> closed by </Convert>")
	wantProblem(t, stderr, "routes[1].soap.version", `"1.3" is not a SOAP version`)
	wantProblem(t, stderr, "routes[1].soap.template", "unknown placeholder {to}")
}
