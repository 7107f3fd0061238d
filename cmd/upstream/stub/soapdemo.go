package stub

import (
	"bytes"
	"encoding/xml"
	"net"
	"strconv"

	"github.com/valyala/fasthttp"
)

// The SOAP demo is a currency converter at /soap/currency speaking SOAP
// 1.1 and 1.2 (the version of the request's envelope): Convert
// (From, To, Amount) answers ConvertResponse/Result and Rate; ListRates
// answers one Rate element per currency, with a currency attribute. An
// unknown currency or a bad amount answers a Client (1.1) or Sender (1.2)
// fault with a detail, HTTP 500.
//
//	<Convert xmlns="http://example.com/currency"><From>EUR</From><To>USD</To><Amount>10</Amount></Convert>

// SOAPDemoNS is the namespace of the SOAP demo's operations.
const SOAPDemoNS = "http://example.com/currency"

// soapDemoRates are the demo's rates per euro.
var soapDemoRates = []struct {
	code string
	rate float64
}{{"EUR", 1}, {"USD", 1.1}, {"GBP", 0.85}, {"JPY", 160}}

const (
	soapNS11 = "http://schemas.xmlsoap.org/soap/envelope/"
	soapNS12 = "http://www.w3.org/2003/05/soap-envelope"
)

// StartSOAPDemo serves the SOAP demo on addr ("127.0.0.1:0" picks a
// port) until stop is called; boundAddr is the address it listens on.
func StartSOAPDemo(addr string) (stop func(), boundAddr string, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &fasthttp.Server{Handler: SOAPDemoHandler, Name: "fastgate-soapdemo"}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln) //nolint:errcheck // ends at Shutdown
		close(done)
	}()
	return func() {
		srv.Shutdown() //nolint:errcheck
		<-done
	}, ln.Addr().String(), nil
}

// soapRequest is the part of a request envelope the demo reads.
type soapRequest struct {
	XMLName xml.Name
	Body    struct {
		Convert *struct {
			From, To, Amount string
		} `xml:"Convert"`
		ListRates *struct{} `xml:"ListRates"`
	} `xml:"Body"`
}

// SOAPDemoHandler answers the SOAP demo's requests.
func SOAPDemoHandler(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) != "/soap/currency" {
		ctx.Error("not found: the SOAP demo serves /soap/currency", fasthttp.StatusNotFound)
		return
	}
	if !ctx.IsPost() {
		ctx.Error("the SOAP demo takes POST", fasthttp.StatusMethodNotAllowed)
		return
	}
	var req soapRequest
	if err := xml.Unmarshal(ctx.PostBody(), &req); err != nil {
		soapFault(ctx, soapNS11, "Client", "the request is not a SOAP envelope: "+err.Error(), "")
		return
	}
	ns := req.XMLName.Space
	if req.XMLName.Local != "Envelope" || ns != soapNS11 && ns != soapNS12 {
		soapFault(ctx, soapNS11, "VersionMismatch", "the root element is not a SOAP 1.1 or 1.2 Envelope", "")
		return
	}
	switch b := &req.Body; {
	case b.Convert != nil:
		from, okFrom := soapDemoRate(b.Convert.From)
		to, okTo := soapDemoRate(b.Convert.To)
		amount, err := strconv.ParseFloat(b.Convert.Amount, 64)
		switch {
		case !okFrom:
			soapFault(ctx, ns, "Client", "unknown currency", b.Convert.From)
		case !okTo:
			soapFault(ctx, ns, "Client", "unknown currency", b.Convert.To)
		case err != nil || amount < 0:
			soapFault(ctx, ns, "Client", "the amount is not a non-negative number", b.Convert.Amount)
		default:
			var w bytes.Buffer
			w.WriteString(`<ConvertResponse xmlns="` + SOAPDemoNS + `"><Result>`)
			w.WriteString(strconv.FormatFloat(amount*to/from, 'f', 2, 64))
			w.WriteString(`</Result><Rate>`)
			w.WriteString(strconv.FormatFloat(to/from, 'f', 6, 64))
			w.WriteString(`</Rate></ConvertResponse>`)
			soapAnswer(ctx, ns, fasthttp.StatusOK, w.Bytes())
		}
	case b.ListRates != nil:
		var w bytes.Buffer
		w.WriteString(`<ListRatesResponse xmlns="` + SOAPDemoNS + `" base="EUR">`)
		for _, r := range soapDemoRates {
			w.WriteString(`<Rate currency="` + r.code + `">` + strconv.FormatFloat(r.rate, 'f', -1, 64) + `</Rate>`)
		}
		w.WriteString(`</ListRatesResponse>`)
		soapAnswer(ctx, ns, fasthttp.StatusOK, w.Bytes())
	default:
		soapFault(ctx, ns, "Client", "unknown operation; the demo has Convert and ListRates", "")
	}
}

func soapDemoRate(code string) (float64, bool) {
	for _, r := range soapDemoRates {
		if r.code == code {
			return r.rate, true
		}
	}
	return 0, false
}

// soapAnswer writes an envelope of namespace ns around body.
func soapAnswer(ctx *fasthttp.RequestCtx, ns string, status int, body []byte) {
	if ns == soapNS12 {
		ctx.SetContentType("application/soap+xml; charset=utf-8")
	} else {
		ctx.SetContentType("text/xml; charset=utf-8")
	}
	ctx.SetStatusCode(status)
	ctx.WriteString(`<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="` + ns + `"><soap:Body>`) //nolint:errcheck
	ctx.Write(body)                                                                                             //nolint:errcheck
	ctx.WriteString(`</soap:Body></soap:Envelope>`)                                                             //nolint:errcheck
}

// soapFault answers a fault with code (1.1 names; Client is Sender in
// 1.2), reason and, when value is set, a detail naming it.
func soapFault(ctx *fasthttp.RequestCtx, ns, code, reason, value string) {
	var w bytes.Buffer
	if ns == soapNS12 {
		switch code {
		case "Client":
			code = "Sender"
		case "Server":
			code = "Receiver"
		}
		w.WriteString(`<soap:Fault><soap:Code><soap:Value>soap:` + code + `</soap:Value></soap:Code><soap:Reason><soap:Text xml:lang="en">`)
		xml.EscapeText(&w, []byte(reason)) //nolint:errcheck
		w.WriteString(`</soap:Text></soap:Reason>`)
		if value != "" {
			w.WriteString(`<soap:Detail>`)
			soapDetail(&w, value)
			w.WriteString(`</soap:Detail>`)
		}
	} else {
		w.WriteString(`<soap:Fault><faultcode>soap:` + code + `</faultcode><faultstring>`)
		xml.EscapeText(&w, []byte(reason)) //nolint:errcheck
		w.WriteString(`</faultstring>`)
		if value != "" {
			w.WriteString(`<detail>`)
			soapDetail(&w, value)
			w.WriteString(`</detail>`)
		}
	}
	w.WriteString(`</soap:Fault>`)
	soapAnswer(ctx, ns, fasthttp.StatusInternalServerError, w.Bytes())
}

func soapDetail(w *bytes.Buffer, value string) {
	w.WriteString(`<InvalidValue xmlns="` + SOAPDemoNS + `">`)
	xml.EscapeText(w, []byte(value)) //nolint:errcheck
	w.WriteString(`</InvalidValue>`)
}
