// Package soap is the soap terminal: a route that answers HTTP/JSON
// requests by calling a SOAP 1.1 or 1.2 service through an upstream (with
// its balancing, retries, health checks, circuit breaker and metrics):
// the envelope is built from a template of the body's content filled with
// path parameters, query arguments and fields of the JSON request body,
// and the XML answer, or its fault, is converted to JSON.
//
//	routes:
//	  - name: convert
//	    match: {path: "/api/convert/{from}/{to}", methods: [POST]}
//	    soap:
//	      upstream: currency
//	      path: /soap/currency
//	      version: "1.1"
//	      action: "http://example.com/Convert"
//	      template: |
//	        <Convert xmlns="http://example.com/">
//	          <From>{from}</From><To>{to}</To><Amount>{body.amount}</Amount>
//	        </Convert>
//	      response: {path: ConvertResponse.Result}
package soap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

// Builder is the core.TerminalBuilder of routes with soap. It holds no
// state and is safe for concurrent use.
type Builder struct{}

var _ core.TerminalBuilder = (*Builder)(nil)

// Key returns the route's soap config, nil when it has none.
func (*Builder) Key(_ *config.Config, rc *config.Route) any {
	if rc.SOAP == nil {
		return nil
	}
	return rc.SOAP
}

// Validate checks the upstream and the template against the snapshot and
// the route's parameters.
func (*Builder) Validate(e *core.Env) error {
	_, err := compileTemplate(e)
	return err
}

// Build compiles the envelope's parts, headers and error answers once.
func (*Builder) Build(e *core.Env) (core.Terminal, error) {
	parts, err := compileTemplate(e)
	if err != nil {
		return nil, err
	}
	s := e.Route.SOAP
	t := &Terminal{
		up:          e.Upstream(s.Upstream),
		timeout:     s.Timeout.D(),
		uri:         []byte(s.Path),
		parts:       parts,
		faultStatus: s.FaultStatus,
		responsePath: func() []string {
			if s.Response.Path == "" {
				return nil
			}
			return strings.Split(s.Response.Path, ".")
		}(),
		opts: Options{
			KeepPrefix:      s.Response.Namespaces == config.SOAPNamespacesKeep,
			AttributePrefix: s.Response.AttributePrefix,
			Arrays:          s.Response.Arrays,
		},
		faults: e.Counter(`fastgate_soap_faults_total{route=` + strconv.Quote(e.Route.Name) + `}`),
	}
	if t.up == nil {
		return nil, fmt.Errorf("soap.upstream: unknown upstream %q", s.Upstream)
	}
	for k, v := range s.FaultMap {
		t.faultMap = append(t.faultMap, faultStatus{code: []byte(localName(k)), status: v})
	}
	ns := NS11
	if s.Version == config.SOAP12 {
		ns = NS12
		t.contentType = []byte(`application/soap+xml; charset=utf-8`)
		if s.Action != "" {
			t.contentType = append(t.contentType, `; action="`+s.Action+`"`...)
		}
	} else {
		t.contentType = []byte(`text/xml; charset=utf-8`)
		t.soapAction = []byte(`"` + s.Action + `"`)
	}
	t.head = []byte(`<?xml version="1.0" encoding="utf-8"?>` + "\n" + `<soap:Envelope xmlns:soap="` + ns + `"><soap:Body>`)
	t.tail = []byte(`</soap:Body></soap:Envelope>`)
	if t.responsePath != nil {
		t.errNoPath = newError(fasthttp.StatusBadGateway, "soap: the SOAP answer has no element "+s.Response.Path+" (response.path)")
	}
	return t, nil
}

// compileTemplate checks the route's upstream and parses its template
// into the terminal's parts.
func compileTemplate(e *core.Env) ([]part, error) {
	s := e.Route.SOAP
	if _, ok := e.Config.Upstreams[s.Upstream]; !ok {
		return nil, fmt.Errorf("soap.upstream: unknown upstream %q", s.Upstream)
	}
	where := "soap.template"
	if s.TemplateFile != "" {
		where = "soap.template_file"
	}
	text, err := s.TemplateText()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	cps, err := config.ParseSOAPTemplate(text, e.Params())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if err := config.CheckSOAPTemplateXML(cps); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	parts := make([]part, 0, len(cps))
	for _, cp := range cps {
		p := part{literal: []byte(cp.Literal), param: -1}
		switch {
		case cp.Param != "":
			p.param = e.ParamIndex(cp.Param)
		case cp.Query != "":
			p.query = []byte(cp.Query)
		case cp.Body != nil:
			name := strings.Join(cp.Body, ".")
			p.body = cp.Body
			p.missing = newError(fasthttp.StatusBadRequest, "soap: the JSON request body has no field "+name+", which the SOAP template needs ({body."+name+"})")
			p.notScalar = newError(fasthttp.StatusBadRequest, "soap: the JSON request body's field "+name+" is not a string, number or boolean, which the SOAP template needs ({body."+name+"})")
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// newError returns a core.Error with msg made JSON-safe.
func newError(status int, msg string) *core.Error {
	return &core.Error{Status: status, Err: errors.New(jsonSafe(msg))}
}

// localName returns a qualified name's part after the colon.
func localName(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[i+1:]
	}
	return s
}
