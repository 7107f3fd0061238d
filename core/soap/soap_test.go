package soap_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/coretest"
	"fastgate/core/soap"
)

const soapConfig = `
upstreams:
  svc: {targets: [{url: "http://10.0.0.1:80"}]}
  flaky:
    targets: [{url: "http://10.0.0.9:80"}, {url: "http://10.0.0.1:80"}]
    balancer: round_robin
  slow: {targets: [{url: "http://10.0.0.2:80"}], timeouts: {request: 50ms}, retries: {attempts: 1}}
routes:
  - name: convert
    match: {path: "/api/convert/{from}/{to}", methods: [POST, GET]}
    soap:
      upstream: svc
      path: /soap/currency
      version: "1.1"
      action: "http://example.com/Convert"
      template: |
        <Convert xmlns="http://example.com/">
          <From>{from}</From><To>{to}</To><Amount>{body.amount}</Amount><Note>{query.note}</Note>
        </Convert>
      response: {path: ConvertResponse.Result}
  - name: convert12
    match: {path: "/api/v12/{from}"}
    soap:
      upstream: svc
      path: /soap/v12?x=1
      version: "1.2"
      action: "http://example.com/Convert"
      template: '<m:Convert xmlns:m="http://example.com/"><m:From>{from}</m:From><m:Who>{body.user.name}</m:Who></m:Convert>'
      fault_map: {"soap:Sender": 400}
  - name: whole
    match: {path: /whole}
    soap:
      upstream: svc
      path: /soap/whole
      template: <Rates/>
      response: {arrays: [Single, Missing], attribute_prefix: "-"}
  - name: keep
    match: {path: /keep}
    soap:
      upstream: svc
      path: /soap/whole
      template: <Rates/>
      response: {namespaces: keep}
  - name: faults
    match: {path: "/fault/{kind}"}
    soap:
      upstream: svc
      path: "/soap/fault"
      template: <Fail kind="{kind}"/>
      fault_status: 503
      fault_map: {"Client": 422}
  - name: flaky
    match: {path: /flaky}
    soap: {upstream: flaky, path: /soap/whole, template: <Rates/>}
  - name: slow
    match: {path: /slow}
    soap: {upstream: slow, path: /soap/slow, template: <Slow/>}
  - name: slow-route
    match: {path: /slow-route}
    soap: {upstream: svc, path: /soap/slow, template: <Slow/>, timeout: 20ms}
`

// service is the SOAP service of the tests: it records the requests it
// received and answers by path.
type service struct {
	mu       sync.Mutex
	requests []received
	release  chan struct{} // closed at the end: /soap/slow waits on it
}

type received struct {
	uri, contentType, action, body string
}

const wholeAnswer = `<?xml version="1.0"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">
  <S:Header><Ignored/></S:Header>
  <S:Body>
    <m:RatesResponse xmlns:m="http://example.com/" date="2024-01-02">
      <m:Rate cur="USD">1.10</m:Rate>
      <m:Rate cur="GBP">0.86</m:Rate>
      <m:Single>x</m:Single>
      <m:Base>EUR</m:Base>
      <m:Mixed a="1">text <m:B>b</m:B> more</m:Mixed>
      <m:Escaped>&lt;&amp;&gt; "q" &#x263A;</m:Escaped>
      <m:Empty/>
      <m:Rate cur="JPY">160</m:Rate>
    </m:RatesResponse>
  </S:Body>
</S:Envelope>`

func (s *service) handle(ctx *fasthttp.RequestCtx) {
	s.mu.Lock()
	s.requests = append(s.requests, received{
		uri: string(ctx.RequestURI()), contentType: string(ctx.Request.Header.ContentType()),
		action: string(ctx.Request.Header.Peek("SOAPAction")), body: string(ctx.PostBody()),
	})
	s.mu.Unlock()
	switch string(ctx.Path()) {
	case "/soap/currency":
		ctx.SetContentType("text/xml; charset=utf-8")
		ctx.WriteString(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` +
			`<ConvertResponse xmlns="http://example.com/"><Result>12.5</Result></ConvertResponse></soap:Body></soap:Envelope>`) //nolint:errcheck
	case "/soap/v12":
		ctx.SetContentType("application/soap+xml; charset=utf-8")
		if strings.Contains(string(ctx.PostBody()), "<m:Who>bad</m:Who>") {
			ctx.SetStatusCode(500)
			ctx.WriteString(`<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault>` +
				`<env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>m:BadName</env:Value></env:Subcode></env:Code>` +
				`<env:Reason><env:Text xml:lang="en">bad "name"</env:Text></env:Reason>` +
				`<env:Detail><m:Why xmlns:m="http://example.com/">no such user</m:Why></env:Detail></env:Fault></env:Body></env:Envelope>`) //nolint:errcheck
			return
		}
		ctx.WriteString(`<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>` +
			`<m:ConvertResponse xmlns:m="http://example.com/"><m:Result>7</m:Result></m:ConvertResponse></env:Body></env:Envelope>`) //nolint:errcheck
	case "/soap/whole":
		ctx.SetContentType("text/xml")
		ctx.WriteString(wholeAnswer) //nolint:errcheck
	case "/soap/fault":
		kind := string(ctx.PostBody())
		switch {
		case strings.Contains(kind, `"client"`):
			ctx.SetStatusCode(500)
			ctx.WriteString(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>` +
				`<faultcode>soap:Client</faultcode><faultstring>Amount must be positive</faultstring>` +
				`<detail><e:Error xmlns:e="http://example.com/e" code="7"><e:Field>amount</e:Field></e:Error></detail>` +
				`</soap:Fault></soap:Body></soap:Envelope>`) //nolint:errcheck
		case strings.Contains(kind, `"server"`):
			ctx.SetStatusCode(500)
			ctx.WriteString(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>` +
				`<faultcode>soap:Server</faultcode><faultstring>down</faultstring></soap:Fault></soap:Body></soap:Envelope>`) //nolint:errcheck
		case strings.Contains(kind, `"html"`):
			ctx.SetStatusCode(500)
			ctx.SetContentType("text/html")
			ctx.WriteString("<html><body>Internal error<br></body></html>") //nolint:errcheck
		case strings.Contains(kind, `"text"`):
			ctx.WriteString("OK") //nolint:errcheck
		case strings.Contains(kind, `"xml"`):
			ctx.WriteString("<a><b/></a>") //nolint:errcheck
		case strings.Contains(kind, `"nofault"`):
			ctx.SetStatusCode(503)
			ctx.WriteString(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><X/></soap:Body></soap:Envelope>`) //nolint:errcheck
		case strings.Contains(kind, `"nopath"`):
			ctx.WriteString(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>`) //nolint:errcheck
		}
	case "/soap/slow":
		<-s.release
	}
}

func startSOAP(t *testing.T) (*coretest.Gateway, *service) {
	t.Helper()
	s := &service{release: make(chan struct{})}
	gw := startBench(t, s)
	t.Cleanup(func() { close(s.release) })
	return gw, s
}

func startBench(t testing.TB, s *service) *coretest.Gateway {
	return coretest.Start(t, soapConfig, core.Options{Terminals: []core.TerminalBuilder{&soap.Builder{}}},
		map[string]fasthttp.RequestHandler{"10.0.0.1:80": s.handle, "10.0.0.2:80": s.handle})
}

// do sends method uri with body and returns status, body and the
// response's Content-Type.
func do(t *testing.T, gw *coretest.Gateway, method, uri, body string) (int, string, string) {
	t.Helper()
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	req.SetBodyString(body)
	if err := gw.Client.DoTimeout(req, resp, 10*time.Second); err != nil {
		t.Fatalf("%s %s: %s", method, uri, err)
	}
	if len(resp.Header.Peek("X-Request-ID")) == 0 {
		t.Fatalf("%s %s: no X-Request-ID", method, uri)
	}
	return resp.StatusCode(), string(resp.Body()), string(resp.Header.ContentType())
}

// last returns the last request the service received, and their count.
func (s *service) last() (received, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return received{}, 0
	}
	return s.requests[len(s.requests)-1], len(s.requests)
}

func TestEnvelope(t *testing.T) {
	gw, svc := startSOAP(t)
	f := func(method, uri, body string, wantStatus int, wantBody string, want received) {
		t.Helper()
		status, got, ct := do(t, gw, method, uri, body)
		if status != wantStatus || got != wantBody {
			t.Fatalf("%s %s: got %d %s; want %d %s", method, uri, status, got, wantStatus, wantBody)
		}
		if ct != "application/json" {
			t.Fatalf("%s %s: Content-Type got %q; want application/json", method, uri, ct)
		}
		if r, _ := svc.last(); r != want {
			t.Fatalf("%s %s: the service received\n%+v\nwant\n%+v", method, uri, r, want)
		}
	}
	f("POST", "http://gw/api/convert/EUR/U%3CS%26D%3E?note=a'b%22", `{"amount": 12.50}`, 200, "\"12.5\"\n", received{
		uri: "/soap/currency", contentType: "text/xml; charset=utf-8", action: `"http://example.com/Convert"`,
		body: `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
			`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Convert xmlns="http://example.com/">` + "\n" +
			`  <From>EUR</From><To>U&lt;S&amp;D&gt;</To><Amount>12.50</Amount><Note>a&apos;b&quot;</Note>` + "\n" +
			`</Convert></soap:Body></soap:Envelope>`,
	})
	f("POST", "http://gw/api/v12/a%26b", `{"user": {"name": "<&>"}}`, 200, "{\"Result\":\"7\"}\n", received{
		uri: "/soap/v12?x=1", contentType: `application/soap+xml; charset=utf-8; action="http://example.com/Convert"`,
		body: `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
			`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>` +
			`<m:Convert xmlns:m="http://example.com/"><m:From>a&amp;b</m:From><m:Who>&lt;&amp;&gt;</m:Who></m:Convert></soap:Body></soap:Envelope>`,
	})
	// A boolean and a string are scalars too.
	f("POST", "http://gw/api/convert/A/B", `{"amount": true}`, 200, "\"12.5\"\n", received{
		uri: "/soap/currency", contentType: "text/xml; charset=utf-8", action: `"http://example.com/Convert"`,
		body: `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
			`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><Convert xmlns="http://example.com/">` + "\n" +
			`  <From>A</From><To>B</To><Amount>true</Amount><Note></Note>` + "\n" +
			`</Convert></soap:Body></soap:Envelope>`,
	})
}

// TestBadRequest: a body field the template needs that is missing or not
// a scalar answers 400 and sends nothing upstream.
func TestBadRequest(t *testing.T) {
	gw, svc := startSOAP(t)
	f := func(uri, body, want string) {
		t.Helper()
		status, got, _ := do(t, gw, "POST", uri, body)
		if status != 400 || !strings.HasPrefix(got, want) {
			t.Fatalf("POST %s %s: got %d %s; want 400 %s", uri, body, status, got, want)
		}
		if _, n := svc.last(); n != 0 {
			t.Fatalf("POST %s %s: the service received %d requests; want 0", uri, body, n)
		}
	}
	f("http://gw/api/convert/A/B", `{"amont": 1}`, `{"error":"soap: the JSON request body has no field amount, which the SOAP template needs ({body.amount})","status":400,"request_id":"`)
	f("http://gw/api/convert/A/B", ``, `{"error":"soap: the JSON request body has no field amount,`)
	f("http://gw/api/convert/A/B", `{"amount": null}`, `{"error":"soap: the JSON request body has no field amount,`)
	f("http://gw/api/convert/A/B", `{"amount": [1]}`, `{"error":"soap: the JSON request body's field amount is not a string, number or boolean, which the SOAP template needs ({body.amount})","status":400`)
	f("http://gw/api/convert/A/B", `[1]`, `{"error":"soap: the request body is not a JSON object, which the SOAP template reads {body...} fields from","status":400`)
	f("http://gw/api/convert/A/B", `{"amount":`, `{"error":"soap: the request body is not a JSON object`)
	f("http://gw/api/v12/x", `{"user": "bob"}`, `{"error":"soap: the JSON request body has no field user.name, which the SOAP template needs ({body.user.name})"`)
}

func TestConvert(t *testing.T) {
	gw, _ := startSOAP(t)
	f := func(uri, want string) {
		t.Helper()
		status, got, _ := do(t, gw, "GET", uri, "")
		if status != 200 || got != want+"\n" {
			t.Fatalf("GET %s: got %d\n%s\nwant 200\n%s", uri, status, got, want)
		}
	}
	f("http://gw/whole", `{"-date":"2024-01-02",`+
		`"Rate":[{"-cur":"USD","#text":"1.10"},{"-cur":"GBP","#text":"0.86"},{"-cur":"JPY","#text":"160"}],`+
		`"Single":["x"],"Base":"EUR","Mixed":{"-a":"1","B":"b","#text":"text  more"},"Escaped":"<&> \"q\" ☺","Empty":""}`)
	f("http://gw/keep", `{"@date":"2024-01-02",`+
		`"m:Rate":[{"@cur":"USD","#text":"1.10"},{"@cur":"GBP","#text":"0.86"},{"@cur":"JPY","#text":"160"}],`+
		`"m:Single":"x","m:Base":"EUR","m:Mixed":{"@a":"1","m:B":"b","#text":"text  more"},"m:Escaped":"<&> \"q\" ☺","m:Empty":""}`)
}

func TestFault(t *testing.T) {
	gw, _ := startSOAP(t)
	f := func(method, uri, body string, wantStatus int, want string) {
		t.Helper()
		status, got, _ := do(t, gw, method, uri, body)
		if status != wantStatus || !strings.HasPrefix(got, want) {
			t.Fatalf("%s %s: got %d\n%s\nwant %d\n%s", method, uri, status, got, wantStatus, want)
		}
	}
	f("GET", "http://gw/fault/client", "", 422,
		`{"error":"Amount must be positive","fault_code":"soap:Client","detail":{"Error":{"@code":"7","Field":"amount"}},"status":422,"request_id":"`)
	f("GET", "http://gw/fault/server", "", 503, `{"error":"down","fault_code":"soap:Server","status":503,"request_id":"`)
	f("POST", "http://gw/api/v12/x", `{"user":{"name":"bad"}}`, 400,
		`{"error":"bad \"name\"","fault_code":"env:Sender","detail":{"Why":"no such user"},"status":400,"request_id":"`)
	f("GET", "http://gw/fault/html", "", 502,
		`{"error":"soap: the SOAP service answered HTTP 500 (Content-Type text/html) with a body that is not XML (element <br> is closed by </body>)","status":502`)
	f("GET", "http://gw/fault/text", "", 502, `{"error":"soap: the SOAP service answered HTTP 200 (Content-Type text/plain; charset=utf-8) with a body that is not XML (the document has text outside its root element)","status":502`)
	f("GET", "http://gw/fault/xml", "", 502, `{"error":"soap: the SOAP service answered HTTP 200 (Content-Type text/plain; charset=utf-8) with XML that is not a SOAP envelope (root element a)","status":502`)
	f("GET", "http://gw/fault/nofault", "", 502, `{"error":"soap: the SOAP service answered HTTP 503 (Content-Type text/plain; charset=utf-8) without a fault","status":502`)
	f("GET", "http://gw/fault/nopath", "", 200, "null\n")
	cf := func(name string, want uint64) {
		t.Helper()
		if got := gw.Metrics().Set().GetOrCreateCounter(name).Get(); got != want {
			t.Fatalf("%s: got %d; want %d", name, got, want)
		}
	}
	cf(`fastgate_soap_faults_total{route="faults"}`, 2)
	cf(`fastgate_soap_faults_total{route="convert12"}`, 1)
}

// TestUpstream: the call has the upstream's retries and timeouts.
func TestUpstream(t *testing.T) {
	gw, _ := startSOAP(t)
	f := func(uri string, wantStatus int, want string) {
		t.Helper()
		status, got, _ := do(t, gw, "POST", uri, "")
		if status != wantStatus || !strings.HasPrefix(got, want) {
			t.Fatalf("POST %s: got %d %s; want %d %s", uri, status, got, wantStatus, want)
		}
	}
	// 10.0.0.9 refuses: nothing was sent, the call goes to 10.0.0.1.
	for range 4 {
		f("http://gw/flaky", 200, `{"@date":"2024-01-02"`)
	}
	f("http://gw/slow", 504, `{"error":"upstream timed out","status":504`)
	f("http://gw/slow-route", 504, `{"error":"upstream timed out","status":504`)
}
