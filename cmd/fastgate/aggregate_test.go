package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestAggregate runs fastgate with an aggregate route over the demo users,
// orders and products services: a merged response, with a backend that
// waits for a field of another, and a partial one when an optional
// backend is down.
func TestAggregate(t *testing.T) {
	users := startUpstream(t, "users", "-demo", "users")
	orders := startUpstream(t, "orders", "-demo", "orders")
	products := startUpstream(t, "products", "-demo", "products")
	recs := startUpstream(t, "recs", "-echo")
	g := startGateway(t, `
upstreams:
  users: {targets: [{url: "{{users}}"}]}
  orders: {targets: [{url: "{{orders}}"}]}
  products: {targets: [{url: "{{products}}"}]}
  recs: {targets: [{url: "{{recs}}"}], retries: {attempts: 1}}
routes:
  - name: dashboard
    match: {path: "/api/dashboard/{id}"}
    aggregate:
      timeout: 5s
      backends:
        - {upstream: users, path: "/users/{id}", group: user, required: true, deny: [email]}
        - {upstream: orders, path: "/orders?user={id}", group: orders, collection: true, allow: [id, sku]}
        - {upstream: products, path: "/products/{resp1.0.sku}", group: first_product, allow: [name]}
        - {upstream: recs, path: "/recs/{id}", group: recs, allow: [method, path]}
`, users, orders, products, recs)
	f := func(path string, status int, body, failed string) {
		t.Helper()
		r := g.get(t, path)
		if r.status != status {
			t.Fatalf("GET %s: got %d; want %d; body %s", path, r.status, status, r.body)
		}
		if got := r.header.Get("Content-Type"); got != "application/json" {
			t.Fatalf("GET %s: got Content-Type %q; want application/json", path, got)
		}
		if r.length != int64(len(r.body)) {
			t.Fatalf("GET %s: got Content-Length %d; want %d", path, r.length, len(r.body))
		}
		var got, want any
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("GET %s: body %s: %s", path, r.body, err)
		}
		if err := json.Unmarshal([]byte(body), &want); err != nil {
			t.Fatal(err)
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Fatalf("GET %s: got body\n%s\nwant\n%s", path, gb, wb)
		}
		if got := r.header.Get("X-Fastgate-Failed"); got != failed {
			t.Fatalf("GET %s: got X-Fastgate-Failed %q; want %q", path, got, failed)
		}
		if got, want := r.header.Get("X-Fastgate-Partial") == "true", failed != ""; got != want {
			t.Fatalf("GET %s: got X-Fastgate-Partial %q; want it %v", path, r.header.Get("X-Fastgate-Partial"), want)
		}
	}
	const user1 = `"user":{"id":1,"name":"Ada Lovelace"},
		"orders":[{"id":1,"sku":"sku-1001"},{"id":2,"sku":"sku-1003"},{"id":8,"sku":"sku-1005"}],
		"first_product":{"name":"Mechanical keyboard"}`
	f("/api/dashboard/1", 200, `{`+user1+`,"recs":{"method":"GET","path":"/recs/1"}}`, "")
	// user 5 has no orders: the product it would fetch has no sku to go by
	f("/api/dashboard/5", 200, `{"user":{"id":5,"name":"Barbara Liskov"},"orders":[],"recs":{"method":"GET","path":"/recs/5"}}`, "first_product")
	// the required user does not exist
	r := g.get(t, "/api/dashboard/9")
	checkGatewayError(t, "unknown user", r, 502)
	if !strings.Contains(string(r.body), "backend user (upstream users): answered status 404") {
		t.Fatalf("GET /api/dashboard/9: got body %s; want the failed backend and its status", r.body)
	}
	// an optional backend goes down: a partial answer
	if code := recs.stop(); code != 0 {
		t.Fatalf("stop recs: exit code %d", code)
	}
	f("/api/dashboard/1", 200, `{`+user1+`}`, "recs")
}

// TestAggregateCheck: fastgate -check names each bad aggregate setting by
// its path.
func TestAggregateCheck(t *testing.T) {
	bad := `
upstreams:
  users: {targets: [{url: "http://127.0.0.1:9"}]}
routes:
  - match: {path: "/d/{id}"}
    aggregate:
      timeout: 1s
      backends:
        - {upstream: userz, path: "/users/{idd}", group: u}
        - {upstream: users, path: "/users/{resp2.id}", group: u, allow: [a], deny: [b], timeout: 2s}
        - {upstream: users, path: "/orders", collection: true}
`
	checkRejects(t, bad,
		`routes[0].aggregate.backends[0].upstream: unknown upstream "userz"`,
		`routes[0].aggregate.backends[0].path: unknown parameter {idd}`,
		`routes[0].aggregate.backends[1].path: {resp2.id} refers to backend 2`,
		`routes[0].aggregate.backends[1].group: "u" is the group of backends[0] too`,
		`routes[0].aggregate.backends[1].deny: allow and deny exclude each other`,
		`routes[0].aggregate.backends[1].timeout: 2s exceeds the aggregate's timeout 1s`,
		`routes[0].aggregate.backends[2].collection: a collection (a JSON array) needs a group`,
	)
}
