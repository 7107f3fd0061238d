package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestValidateSOAP(t *testing.T) {
	f := func(routes string, want ...string) { t.Helper(); wantProblems(t, routes, want...) }
	f(`routes:
  - match: {path: "/c/{from}/{to}"}
    soap:
      upstream: users
      path: /soap/currency
      version: "1.2"
      action: "http://example.com/Convert"
      template: |
        <Convert xmlns="http://example.com/"><From>{from}</From><To a="{to}">{body.amount.value}</To><Q>{query.q}</Q></Convert>
      response: {path: ConvertResponse.Result, namespaces: keep, attribute_prefix: "_", arrays: [Rate]}
      timeout: 2s
      fault_status: 500
      fault_map: {"soap:Client": 400, Server: 503}`)
	f(`routes: [{match: {path: /a}, soap: {}}]`,
		`routes[0].soap.upstream: required: name the upstream that serves the route (known: orders, users)`,
		`routes[0].soap.path: required: the service's endpoint path, such as "/soap/currency"`,
		`routes[0].soap.template: required (or template_file): the content of soap:Body, such as "<Convert xmlns=\"http://example.com/\"><Amount>{body.amount}</Amount></Convert>"`)
	f(`routes: [{match: {path: "/a/{id}"}, soap: {upstream: user, path: soap, version: "2", action: 'a"b', template: "<A>{idd}</A>"}, timeout: 1s}]`,
		`routes[0].soap.upstream: unknown upstream "user" (known: orders, users); did you mean "users"?`,
		`routes[0].soap.path: "soap" must start with "/", such as "/soap/currency"`,
		`routes[0].soap.version: "2" is not a SOAP version; write "1.1" or "1.2" (quoted, or YAML reads a number)`,
		`routes[0].soap.action: "a\"b" must not contain quotes or control characters: it is sent in a header`,
		`routes[0].soap.template: unknown placeholder {idd} (the route's path has: id; a field of the JSON body is {body.NAME}, a query argument {query.NAME})`,
		`routes[0].timeout: only applies to a route with an upstream; this route is soap`)
	f(`routes: [{match: {path: /a}, soap: {upstream: users, path: /s, template: "<A><B></A>"}}]`,
		`routes[0].soap.template: is not well-formed XML (line 1 of the template, placeholders replaced): element <B> closed by </A>`)
	f(`routes: [{match: {path: /a}, soap: {upstream: users, path: /s, template: "just text {body.x}"}}]`,
		`routes[0].soap.template: has no element; write the operation's element, such as <Convert xmlns="http://example.com/">...</Convert>`)
	f(`routes: [{match: {path: /a}, soap: {upstream: users, path: /s, template: "<?xml version=\"1.0\"?><A/>"}}]`,
		`routes[0].soap.template: must not hold a processing instruction or XML declaration: the gateway writes the envelope around it`)
	f(`routes: [{match: {path: /a}, soap: {upstream: users, path: /s, template: "<A>{body.}{query.a b}</A>"}}]`,
		`routes[0].soap.template: {body.}: empty field path; write a field name or a dotted path such as "address.city"`)
	f(`routes: [{match: {path: /a}, soap: {upstream: users, path: /s, template: "<A>{x</A>"}}]`,
		`routes[0].soap.template: unclosed '{' in "{x</A>"`)
	f(`routes: [{match: {path: /a}, soap: {upstream: users, path: /s, template: "<A/>", template_file: a.xml}}]`,
		`routes[0].soap.template_file: template and template_file exclude each other; keep one`)
	f(`routes: [{match: {path: /a}, soap: {upstream: users, path: /s, template_file: /nonexistent/a.xml}}]`,
		`routes[0].soap.template_file: cannot read the template: open /nonexistent/a.xml: no such file or directory`)
	f(`routes:
  - match: {path: /a}
    soap:
      upstream: users
      path: /s
      template: <A/>
      response: {path: "a..b", namespaces: drop, attribute_prefix: '"', arrays: ["m:Rate", ""]}
      fault_status: 200
      fault_map: {"soap:": 400, Client: 700}`,
		`routes[0].soap.response.path: field path "a..b" has an empty segment; write names separated by single dots, such as "address.city"`,
		`routes[0].soap.response.namespaces: "drop" is not a choice; write "strip" (local names) or "keep" (prefix:name)`,
		`routes[0].soap.response.attribute_prefix: "\"" must not contain quotes, backslashes or control characters`,
		`routes[0].soap.response.arrays[0]: "m:Rate" is not an element's local name, such as Rate`,
		`routes[0].soap.response.arrays[1]: "" is not an element's local name, such as Rate`,
		`routes[0].soap.fault_status: must be 400-599, got 200`,
		`routes[0].soap.fault_map.Client: must be 400-599, got 700`,
		`routes[0].soap.fault_map["soap:"]: the fault code must not be empty; write "soap:Client" or "Client"`)
}

func TestSOAPTemplateFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.xml")
	bad := filepath.Join(dir, "bad.xml")
	if err := os.WriteFile(good, []byte("<A>{body.x}</A>\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("<A>\n<B>{body.x}</A>\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(file, want string) {
		t.Helper()
		err := validate(t, validBase+`routes: [{match: {path: /a}, soap: {upstream: users, path: /s, template_file: "`+file+`"}}]`)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Fatalf("template_file %s: got %q; want %q", file, got, want)
		}
	}
	f(good, "")
	f(bad, `routes[0].soap.template_file: is not well-formed XML (line 2 of the template, placeholders replaced): element <B> closed by </A>`)
}

func TestSOAPDefaults(t *testing.T) {
	c := mustParse(t, validBase+`routes: [{match: {path: /a}, soap: {upstream: users, path: /s, template: <A/>}}]`, "yaml")
	c.SetDefaults(nil)
	s := c.Routes[0].SOAP
	if s.Version != "1.1" || s.FaultStatus != 502 || s.Response.Namespaces != "strip" || s.Response.AttributePrefix != "@" {
		t.Fatalf("defaults: got %+v; want version 1.1, fault_status 502, namespaces strip, attribute_prefix @", s)
	}
}
