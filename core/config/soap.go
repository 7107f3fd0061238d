package config

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// SOAP is the soap terminal: an HTTP/JSON request is turned into a SOAP
// envelope, POSTed to the SOAP service through an upstream (with its
// balancing, retries, health checks, circuit breaker and metrics), and the
// XML answer, or its fault, is turned into JSON.
//
//	soap:
//	  upstream: currency
//	  path: /soap/currency
//	  version: "1.1"
//	  action: "http://example.com/Convert"
//	  template: |
//	    <Convert xmlns="http://example.com/">
//	      <From>{from}</From><To>{to}</To><Amount>{body.amount}</Amount>
//	    </Convert>
//	  response: {path: ConvertResponse.Result, arrays: [Rate]}
//	  fault_status: 502
type SOAP struct {
	// Upstream names the upstream of the SOAP service. Required.
	Upstream string `json:"upstream" yaml:"upstream"`

	// Path is the request URI of the service's endpoint, such as
	// "/soap/currency" (a query string may follow). Required.
	Path string `json:"path" yaml:"path"`

	// Version is the SOAP version, "1.1" or "1.2". 1.1 sends Content-Type
	// "text/xml; charset=utf-8" and the action in a SOAPAction header; 1.2
	// sends "application/soap+xml; charset=utf-8; action=..." . Default
	// "1.1"; empty takes the default.
	Version string `json:"version" yaml:"version"`

	// Action is the SOAP action URI (SOAPAction header in 1.1, the action
	// parameter of the Content-Type in 1.2). Default empty: SOAPAction ""
	// in 1.1, no action parameter in 1.2.
	Action string `json:"action" yaml:"action"`

	// Template is the content of soap:Body: XML in which {name} is the
	// route's path parameter name, {body.a.b} the field a.b of the JSON
	// request body (a string, number or boolean; a missing one answers
	// 400 and sends nothing) and {query.NAME} the client's query argument
	// NAME (empty when absent). Values are XML-escaped. Leading and
	// trailing whitespace is trimmed. Exactly one of Template and
	// TemplateFile is required; with dummy values it must be well-formed
	// XML.
	Template string `json:"template" yaml:"template"`

	// TemplateFile is a file holding the template, read when the config is
	// loaded or reloaded; a relative path is relative to the gateway's
	// working directory. Default empty: Template.
	TemplateFile string `json:"template_file" yaml:"template_file"`

	// Response says what of the XML answer is returned and how it is
	// converted to JSON.
	Response SOAPResponse `json:"response" yaml:"response"`

	// Timeout bounds the call, retries included. Default 0: the
	// upstream's timeouts.request.
	Timeout Duration `json:"timeout" yaml:"timeout"`

	// FaultStatus is the status of the JSON answer to a SOAP fault, 400-599.
	// Default 502; zero takes the default.
	FaultStatus int `json:"fault_status" yaml:"fault_status"`

	// FaultMap maps fault codes to statuses (400-599), overriding
	// FaultStatus: the key "soap:Client" or "Client" matches a fault code
	// with that local name whatever its prefix ("SOAP-ENV:Client"), in 1.1
	// (faultcode) and 1.2 (Code/Value). Default none.
	FaultMap map[string]int `json:"fault_map" yaml:"fault_map"`
}

// SOAPResponse is how the XML answer becomes JSON. Elements become object
// keys; repeated sibling elements become arrays; attributes become keys
// AttributePrefix+name; the text of an element with attributes or child
// elements is under "#text"; text stays a JSON string (numbers too, as XML
// carries no types); namespace declarations (xmlns) are dropped.
type SOAPResponse struct {
	// Path selects the element returned: dotted local names from the
	// children of soap:Body ("ConvertResponse.Result"), each the first
	// element of that name. Default empty: the first child of soap:Body. A
	// path missing from an answer answers 502.
	Path string `json:"path" yaml:"path"`

	// Namespaces is "strip" (keys are local names: Result) or "keep"
	// (keys are names as written, with their prefix: m:Result). Default
	// "strip"; empty takes the default.
	Namespaces string `json:"namespaces" yaml:"namespaces"`

	// AttributePrefix is put before attribute names to make their keys.
	// Default "@"; empty takes the default.
	AttributePrefix string `json:"attribute_prefix" yaml:"attribute_prefix"`

	// Arrays are local element names always converted to JSON arrays, even
	// when one element (or none, inside a converted parent: []) is
	// present. Default none: an element is an array only when repeated.
	Arrays []string `json:"arrays" yaml:"arrays"`
}

// SOAP defaults and names.
const (
	SOAP11                     = "1.1"
	SOAP12                     = "1.2"
	SOAPNamespacesStrip        = "strip"
	SOAPNamespacesKeep         = "keep"
	DefaultSOAPFaultStatus     = 502
	DefaultSOAPAttributePrefix = "@"
	DefaultSOAPVersion         = SOAP11
	DefaultSOAPNamespaces      = SOAPNamespacesStrip
	soapTemplateDummyValue     = "x"
)

func (s *SOAP) setDefaults() {
	setZero(&s.Version, DefaultSOAPVersion)
	setZero(&s.FaultStatus, DefaultSOAPFaultStatus)
	setZero(&s.Response.Namespaces, DefaultSOAPNamespaces)
	setZero(&s.Response.AttributePrefix, DefaultSOAPAttributePrefix)
}

// SOAPPart is one piece of a SOAP body template: literal XML, or a
// placeholder whose value is XML-escaped.
type SOAPPart struct {
	// Literal is the XML of a literal part.
	Literal string
	// Param is the route parameter name of a {name} part.
	Param string
	// Body is the split field path of a {body.a.b} part.
	Body []string
	// Query is the query argument of a {query.NAME} part.
	Query string
}

// TemplateText returns the template: Template, or the content of
// TemplateFile.
func (s *SOAP) TemplateText() (string, error) {
	if s.TemplateFile == "" {
		return s.Template, nil
	}
	b, err := os.ReadFile(s.TemplateFile)
	if err != nil {
		return "", fmt.Errorf("cannot read the template: %w", err)
	}
	return string(b), nil
}

// ParseSOAPTemplate splits a SOAP body template (trimmed of surrounding
// whitespace) into parts. {name} must be one of params.
func ParseSOAPTemplate(s string, params []string) ([]SOAPPart, error) {
	s = strings.TrimSpace(s)
	var parts []SOAPPart
	for s != "" {
		open := strings.IndexByte(s, '{')
		lit := s
		if open >= 0 {
			lit = s[:open]
		}
		if strings.IndexByte(lit, '}') >= 0 {
			return nil, fmt.Errorf("unbalanced '}' in %q", clip(s))
		}
		if lit != "" {
			parts = append(parts, SOAPPart{Literal: lit})
		}
		if open < 0 {
			break
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed '{' in %q", clip(s[open:]))
		}
		p, err := parseSOAPRef(s[open+1:open+end], params)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
		s = s[open+end+1:]
	}
	return parts, nil
}

// clip shortens a template excerpt for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func parseSOAPRef(name string, params []string) (SOAPPart, error) {
	head, field, dotted := strings.Cut(name, ".")
	switch {
	case head == "query" && dotted:
		if !validToken(field) {
			return SOAPPart{}, fmt.Errorf("{%s}: %q is not a query argument name", name, field)
		}
		return SOAPPart{Query: field}, nil
	case head == "body" && dotted:
		if err := checkFieldPath(field); err != nil {
			return SOAPPart{}, fmt.Errorf("{%s}: %w", name, err)
		}
		return SOAPPart{Body: strings.Split(field, ".")}, nil
	}
	if !slices.Contains(params, name) {
		return SOAPPart{}, fmt.Errorf("unknown placeholder {%s} (the route's path has: %s; a field of the JSON body is {body.NAME}, a query argument {query.NAME})", name, listOrNone(params))
	}
	return SOAPPart{Param: name}, nil
}

// CheckSOAPTemplateXML checks that the template's parts, with every
// placeholder replaced by a dummy value, are well-formed XML content.
func CheckSOAPTemplateXML(parts []SOAPPart) error {
	var b strings.Builder
	b.WriteString("<Body>")
	for _, p := range parts {
		if p.Param == "" && p.Body == nil && p.Query == "" {
			b.WriteString(p.Literal)
		} else {
			b.WriteString(soapTemplateDummyValue)
		}
	}
	b.WriteString("</Body>")
	d := xml.NewDecoder(strings.NewReader(b.String()))
	elements := 0
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("is not well-formed XML (line %d of the template, placeholders replaced): %s", se.Line, se.Msg)
			}
			return fmt.Errorf("is not well-formed XML: %s", err)
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 1 {
				elements++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.ProcInst:
			return fmt.Errorf("must not hold a processing instruction or XML declaration: the gateway writes the envelope around it")
		}
	}
	if elements == 0 {
		return fmt.Errorf("has no element; write the operation's element, such as <Convert xmlns=\"http://example.com/\">...</Convert>")
	}
	return nil
}

// validateSOAP checks a route's soap terminal.
func validateSOAP(errs *Errors, path string, s *SOAP, upstreams, params []string, paramsOK bool) {
	validateRouteUpstream(errs, path+".upstream", s.Upstream, upstreams)
	switch {
	case s.Path == "":
		errs.add(path+".path", `required: the service's endpoint path, such as "/soap/currency"`)
	case !strings.HasPrefix(s.Path, "/"):
		errs.add(path+".path", fmt.Sprintf(`%q must start with "/", such as "/soap/currency"`, s.Path))
	case strings.ContainsAny(s.Path, " \t\r\n\x00#"):
		errs.add(path+".path", fmt.Sprintf("%q must not contain spaces, control characters or '#'; percent-encode them", s.Path))
	}
	if s.Version != SOAP11 && s.Version != SOAP12 {
		errs.add(path+".version", fmt.Sprintf(`%q is not a SOAP version; write "1.1" or "1.2" (quoted, or YAML reads a number)`, s.Version))
	}
	if strings.ContainsAny(s.Action, "\"\r\n\x00") {
		errs.add(path+".action", fmt.Sprintf("%q must not contain quotes or control characters: it is sent in a header", s.Action))
	}
	if s.Timeout < 0 {
		errs.add(path+".timeout", fmt.Sprintf("must be >= 0, got %s", s.Timeout))
	}
	validateSOAPTemplate(errs, path, s, params, paramsOK)
	validateSOAPResponse(errs, path+".response", &s.Response)
	if s.FaultStatus < 400 || s.FaultStatus > 599 {
		errs.add(path+".fault_status", fmt.Sprintf("must be 400-599, got %d", s.FaultStatus))
	}
	for _, k := range slices.Sorted(maps.Keys(s.FaultMap)) {
		p := pathField(path+".fault_map", k)
		if k == "" || strings.HasSuffix(k, ":") {
			errs.add(p, `the fault code must not be empty; write "soap:Client" or "Client"`)
		}
		if v := s.FaultMap[k]; v < 400 || v > 599 {
			errs.add(p, fmt.Sprintf("must be 400-599, got %d", v))
		}
	}
}

func validateSOAPTemplate(errs *Errors, path string, s *SOAP, params []string, paramsOK bool) {
	tp := path + ".template"
	switch {
	case s.Template != "" && s.TemplateFile != "":
		errs.add(path+".template_file", "template and template_file exclude each other; keep one")
		return
	case s.Template == "" && s.TemplateFile == "":
		errs.add(tp, `required (or template_file): the content of soap:Body, such as "<Convert xmlns=\"http://example.com/\"><Amount>{body.amount}</Amount></Convert>"`)
		return
	case s.TemplateFile != "":
		tp = path + ".template_file"
	}
	text, err := s.TemplateText()
	if err != nil {
		errs.add(tp, err.Error())
		return
	}
	if !paramsOK {
		return
	}
	parts, err := ParseSOAPTemplate(text, params)
	if err != nil {
		errs.add(tp, err.Error())
		return
	}
	if err := CheckSOAPTemplateXML(parts); err != nil {
		errs.add(tp, err.Error())
	}
}

func validateSOAPResponse(errs *Errors, path string, r *SOAPResponse) {
	if r.Path != "" {
		if err := checkFieldPath(r.Path); err != nil {
			errs.add(path+".path", err.Error())
		}
	}
	if r.Namespaces != SOAPNamespacesStrip && r.Namespaces != SOAPNamespacesKeep {
		errs.add(path+".namespaces", fmt.Sprintf(`%q is not a choice; write "strip" (local names) or "keep" (prefix:name)`, r.Namespaces))
	}
	if strings.ContainsFunc(r.AttributePrefix, func(c rune) bool { return c < 0x20 || c == '"' || c == '\\' }) {
		errs.add(path+".attribute_prefix", fmt.Sprintf("%q must not contain quotes, backslashes or control characters", r.AttributePrefix))
	}
	for i, a := range r.Arrays {
		if a == "" || strings.ContainsAny(a, ".: <>") {
			errs.add(pathIndex(path+".arrays", i), fmt.Sprintf("%q is not an element's local name, such as Rate", a))
		}
	}
}
