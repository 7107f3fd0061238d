package soap_test

import (
	"testing"

	"github.com/valyala/fasthttp"

	"fastgate/core/soap"
)

// BenchmarkCall is one call through the gateway to the in-memory SOAP
// service: envelope, upstream call, answer converted to JSON.
func BenchmarkCall(b *testing.B) {
	s := &service{release: make(chan struct{})}
	defer close(s.release)
	gw := startBench(b, s)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	b.ReportAllocs()
	for b.Loop() {
		req.Reset()
		req.Header.SetMethod("POST")
		req.SetRequestURI("http://gw/api/convert/EUR/USD")
		req.SetBodyString(`{"amount": 12.5}`)
		if err := gw.Client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatalf("got %v %d %s", err, resp.StatusCode(), resp.Body())
		}
		s.mu.Lock()
		s.requests = s.requests[:0]
		s.mu.Unlock()
	}
}

// BenchmarkConvert is the XML to JSON converter alone, on the answer of
// TestConvert (8 elements, attributes, an array).
func BenchmarkConvert(b *testing.B) {
	var d soap.Doc
	o := soap.Options{AttributePrefix: "@"}
	var out []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(wholeAnswer)))
	for b.Loop() {
		if err := d.Parse([]byte(wholeAnswer)); err != nil {
			b.Fatal(err)
		}
		out = d.AppendJSON(out[:0], d.FirstChild(d.Child(0, "Body")), &o)
	}
}
