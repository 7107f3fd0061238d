package config

import "testing"

func TestHeadersErrors(t *testing.T) {
	f := checkErrors
	f(t, `routes: [{match: {path: "/u/{id}"}, upstream: users, headers: {
  request: {remove: [X-Debug, "X-Gw-*"], rename: {X-A: X-B}, set: {X-Id: "{id}-{client_ip}-{{x}"}, add: {X-R: "{route}{consumer}{request_id}"}},
  response: {remove: [Server], set: {X-Served: gw}}}}]`)
	f(t, `routes: [{match: {path: "/u/{id}"}, upstream: users, headers: {request: {set: {X-Id: "{user}"}}}}]`,
		`routes[0].headers.request.set.X-Id: unknown placeholder "{user}" in "{user}"; known: {client_ip}, {request_id}, {route}, {consumer} and the route's path parameters (id); write "{{" for a literal "{"`)
	f(t, `routes: [{upstream: users, headers: {request: {add: {X-Id: "a{b"}}}}]`,
		`routes[0].headers.request.add.X-Id: unclosed "{" in "a{b"; write "{{" for a literal "{"`)
	f(t, `routes: [{upstream: users, headers: {request: {set: {Content-Length: "1", Host: x}, remove: [Transfer-Encoding, "Content-*", "*", "X Y"]}, response: {set: {Host: x}, rename: {Set-Cookie: X-C, X-D: Connection}}}}]`,
		`routes[0].headers.request.remove[0]: "Transfer-Encoding" can't be transformed: it frames the message body; the gateway sets it from the body it sends`,
		`routes[0].headers.request.remove[1]: "Content-*" would also remove Content-Length, which can't be transformed: it frames the message body; the gateway sets it from the body it sends; list the headers instead`,
		`routes[0].headers.request.remove[2]: "*" is not a header name or a prefix ending in '*' such as "X-Gw-*"`,
		"routes[0].headers.request.remove[3]: \"X Y\" is not a header name: use letters, digits and !#$%&'*+-.^_`|~",
		`routes[0].headers.request.set.Content-Length: "Content-Length" can't be transformed: it frames the message body; the gateway sets it from the body it sends`,
		`routes[0].headers.request.set.Host: "Host" can't be transformed: set the Host sent upstream with the route's rewrite.host`,
		`routes[0].headers.response.rename.Set-Cookie: "Set-Cookie" can't be renamed: its values can't be joined into one; remove it and set the new one instead`,
		`routes[0].headers.response.rename.X-D: "Connection" can't be transformed: it is hop-by-hop: it describes one connection, not the message, and the gateway manages it`,
		`routes[0].headers.response.set.Host: "Host" can't be transformed: Host is a request header`)
	f(t, "routes: [{upstream: users, headers: {response: {set: {X-A: \" padded\"}}}}]",
		`routes[0].headers.response.set.X-A: the value starts or ends with white space, which HTTP strips; remove it`)
}

func TestSecurityHeadersErrors(t *testing.T) {
	f := checkErrors
	f(t, "security_headers: {hsts: \"max-age=600\", frame_options: sameorigin, referrer_policy: \"no-referrer, strict-origin\", set: {Permissions-Policy: \"camera=()\"}}\nroutes: [{upstream: users}]")
	f(t, "security_headers: {hsts: \"off\", content_type_options: \"off\"}\nroutes: [{upstream: users}]")
	f(t, "security_headers: {hsts: \"1 year\", content_type_options: sniff, frame_options: ALLOW-FROM x, referrer_policy: nope, set: {X-Frame-Options: DENY, Content-Length: \"1\"}}\nroutes: [{upstream: users}]",
		`security_headers.hsts: "1 year" must start with "max-age=<seconds>", such as "max-age=31536000; includeSubDomains", or be "off"`,
		`security_headers.content_type_options: "sniff": the only value is "nosniff"; write "off" to send none`,
		`security_headers.frame_options: "ALLOW-FROM x": write "DENY" or "SAMEORIGIN" (ALLOW-FROM is obsolete: use content_security_policy "frame-ancestors")`,
		`security_headers.referrer_policy: "nope" is not a referrer policy; write one of no-referrer, no-referrer-when-downgrade, origin, origin-when-cross-origin, same-origin, strict-origin, strict-origin-when-cross-origin, unsafe-url`,
		`security_headers.set.Content-Length: "Content-Length" can't be transformed: it frames the message body; the gateway sets it from the body it sends`,
		`security_headers.set.X-Frame-Options: "X-Frame-Options" has its own field; set security_headers.frame_options`)
}

// FuzzHeaderTemplate checks the template parser: no panic, and a template
// that parses re-renders (literals with "{" doubled) to itself.
func FuzzHeaderTemplate(f *testing.F) {
	for _, s := range []string{"", "u-{id}", "{{", "{{{id}}", "{client_ip}", "{nope}", "a{b", "}{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts, err := ParseHeaderTemplate(s, []string{"id"})
		if err != nil {
			return
		}
		var b []byte
		for _, p := range parts {
			switch p.Kind {
			case PartLiteral:
				for i := 0; i < len(p.Value); i++ {
					if p.Value[i] == '{' {
						b = append(b, '{')
					}
					b = append(b, p.Value[i])
				}
			case PartParam:
				b = append(b, "{"+p.Value+"}"...)
			default:
				b = append(b, "{"+headerPlaceholders[p.Kind-PartClientIP].name+"}"...)
			}
		}
		if string(b) != s {
			t.Fatalf("ParseHeaderTemplate(%q) re-renders as %q", s, b)
		}
	})
}
