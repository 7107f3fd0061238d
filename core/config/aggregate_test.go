package config

import (
	"reflect"
	"testing"
)

func TestValidateAggregate(t *testing.T) {
	f := func(routes string, want ...string) { t.Helper(); wantProblems(t, routes, want...) }
	f(`routes:
  - match: {path: "/dash/{id}"}
    aggregate:
      timeout: 800ms
      status: 203
      max_body: 64KiB
      backends:
        - {upstream: users, path: "/users/{id}", group: user, required: true, deny: [password_hash, address.zip], headers: [Authorization]}
        - {upstream: orders, path: "/orders?user={id}", group: orders, collection: true, timeout: 300ms, allow: [id, total]}
        - {upstream: users, path: "/users/{resp0.manager_id}?of={resp1.0.id}", group: manager, target: data, rename: {"address.zip": postcode}}
        - {upstream: users, path: /me}`)
	f(`routes: [{match: {path: /a}, aggregate: {}}]`,
		`routes[0].aggregate.backends: required: at least one backend, such as {upstream: users, path: "/users/{id}"}`)
	f(`routes: [{match: {path: /a}, aggregate: {status: 204, backends: [{upstream: users, path: /u}]}, timeout: 1s}]`,
		`routes[0].aggregate.status: must be 200-299 but 204 and 205 (the answer has a JSON body), got 204`,
		`routes[0].timeout: only applies to a route with an upstream; this route is aggregate`)
	f(`routes:
  - match: {path: "/a/{id}"}
    aggregate:
      backends:
        - {upstream: user, path: "/u/{idd}"}
        - {path: "users/{id}", method: POST}
        - {upstream: users}`,
		`routes[0].aggregate.backends[0].upstream: unknown upstream "user" (known: orders, users); did you mean "users"?`,
		`routes[0].aggregate.backends[0].path: unknown parameter {idd} (the route's path has: id; an earlier backend's field is {respN.field}, the client's query argument {query.NAME})`,
		`routes[0].aggregate.backends[1].upstream: required: name the upstream that serves the route (known: orders, users)`,
		`routes[0].aggregate.backends[1].path: "users/{id}" must start with "/", such as "/users/{id}"`,
		`routes[0].aggregate.backends[1].method: "POST" is not supported; an aggregate backend is called with GET (omit method)`,
		`routes[0].aggregate.backends[2].path: required: the backend's request path, such as "/users/{id}"`)
	f(`routes:
  - match: {path: "/a/{id}"}
    aggregate:
      backends:
        - {upstream: users, path: "/u/{resp0.id}"}
        - {upstream: users, path: "/u/{resp2.id}"}
        - {upstream: users, path: "/u/{respx.id}"}
        - {upstream: users, path: "/u/{resp0.}"}
        - {upstream: users, path: "/u/{resp0..a}"}
        - {upstream: users, path: "/u/{id"}
        - {upstream: users, path: "/u/id}"}
        - {upstream: users, path: "/u/{id}#x"}`,
		`routes[0].aggregate.backends[0].path: {resp0.id}: the first backend has no earlier backend to refer to; move it after backend 0`,
		`routes[0].aggregate.backends[1].path: {resp2.id} refers to backend 2; a backend may only refer to an earlier one (0-0), whose response it waits for`,
		`routes[0].aggregate.backends[2].path: {respx.id}: "respx" is not resp followed by a backend index, such as {resp0.id}`,
		`routes[0].aggregate.backends[3].path: {resp0.}: empty field path; write a field name or a dotted path such as "address.city"`,
		`routes[0].aggregate.backends[4].path: {resp0..a}: field path ".a" has an empty segment; write names separated by single dots, such as "address.city"`,
		`routes[0].aggregate.backends[5].path: unclosed '{' in "/u/{id"`,
		`routes[0].aggregate.backends[6].path: unbalanced '}' in "/u/id}"`,
		`routes[0].aggregate.backends[7].path: "/u/{id}#x" must not contain spaces, control characters or '#'; percent-encode them`)
	f(`routes:
  - match: {path: "/a"}
    aggregate:
      timeout: 1s
      backends:
        - {upstream: users, path: /u, group: g, allow: [a], deny: [b], timeout: 2s}
        - {upstream: users, path: /u, group: g, collection: false}
        - {upstream: users, path: /u, collection: true, target: "a..b", allow: ["", x]}
        - {upstream: users, path: /u, deny: [".x"], rename: {"a.b": "c.d", "": x, y: ""}}
        - {upstream: users, path: /u, headers: [Authorization, "bad name", host, X-Forwarded-For]}`,
		`routes[0].aggregate.backends[0].deny: allow and deny exclude each other: list the fields to keep (allow) or to remove (deny)`,
		`routes[0].aggregate.backends[0].timeout: 2s exceeds the aggregate's timeout 1s, which bounds every backend; lower it or raise aggregate.timeout`,
		`routes[0].aggregate.backends[1].group: "g" is the group of backends[0] too; each group is one key of the response`,
		`routes[0].aggregate.backends[2].collection: a collection (a JSON array) needs a group to be placed under; set group`,
		`routes[0].aggregate.backends[2].target: field path "a..b" has an empty segment; write names separated by single dots, such as "address.city"`,
		`routes[0].aggregate.backends[2].allow[0]: empty field path; write a field name or a dotted path such as "address.city"`,
		`routes[0].aggregate.backends[3].deny[0]: field path ".x" has an empty segment; write names separated by single dots, such as "address.city"`,
		`routes[0].aggregate.backends[3].rename[""]: empty field path; write a field name or a dotted path such as "address.city"`,
		`routes[0].aggregate.backends[3].rename["a.b"]: the new name "c.d" must be a non-empty field name without dots; the field stays in its object`,
		`routes[0].aggregate.backends[3].rename.y: the new name "" must be a non-empty field name without dots; the field stays in its object`,
		`routes[0].aggregate.backends[4].headers[1]: "bad name" is not a header name: use letters, digits and !#$%&'*+-.^_`+"`"+`|~`,
		`routes[0].aggregate.backends[4].headers[2]: Host cannot be copied: the gateway sets it for each backend call`,
		`routes[0].aggregate.backends[4].headers[3]: X-Forwarded-For cannot be copied: the gateway sets it for each backend call`)
}

func TestAggregateDefaults(t *testing.T) {
	c := mustParse(t, validBase+`routes: [{match: {path: /a}, aggregate: {backends: [{upstream: users, path: /u}]}}]`, "yaml")
	c.SetDefaults(nil)
	a := c.Routes[0].Aggregate
	if a.Timeout != DefaultAggregateTimeout || a.Status != 200 || a.MaxBody != 1<<20 || a.Backends[0].Method != "GET" {
		t.Fatalf("aggregate defaults: got %+v", a)
	}
	if got := c.Routes[0].Terminal(); got != TerminalAggregate {
		t.Fatalf("Terminal: got %q; want %q", got, TerminalAggregate)
	}
}

func TestParseAggregatePath(t *testing.T) {
	f := func(s string, want ...AggregatePart) {
		t.Helper()
		got, err := ParseAggregatePath(s, []string{"id"}, 2)
		if err != nil {
			t.Fatalf("ParseAggregatePath(%q): %s", s, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseAggregatePath(%q):\ngot  %+v\nwant %+v", s, got, want)
		}
	}
	f("/u", AggregatePart{Literal: "/u", Ref: -1})
	f("/u/{id}/x?a={resp1.b.0}&c={id}",
		AggregatePart{Literal: "/u/", Ref: -1},
		AggregatePart{Param: "id", Ref: -1},
		AggregatePart{Literal: "/x?a=", Ref: -1},
		AggregatePart{Ref: 1, Field: []string{"b", "0"}, Query: true},
		AggregatePart{Literal: "&c=", Ref: -1, Query: true},
		AggregatePart{Param: "id", Ref: -1, Query: true})
}
