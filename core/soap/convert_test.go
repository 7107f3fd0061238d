package soap

import (
	"encoding/json"
	"testing"
)

func TestAppendJSON(t *testing.T) {
	f := func(xml string, o Options, want string) {
		t.Helper()
		var d Doc
		if err := d.Parse([]byte(xml)); err != nil {
			t.Fatalf("Parse(%s): %s", xml, err)
		}
		if got := string(d.AppendJSON(nil, 0, &o)); got != want {
			t.Fatalf("AppendJSON(%s):\ngot  %s\nwant %s", xml, got, want)
		}
	}
	strip := Options{AttributePrefix: "@"}
	f(`<a>x</a>`, strip, `"x"`)
	f(`<a/>`, strip, `""`)
	f(`<a> <b>1</b> <c>2</c> <b>3</b> </a>`, strip, `{"b":["1","3"],"c":"2"}`)
	f(`<a><b>1</b></a>`, Options{AttributePrefix: "@", Arrays: []string{"b"}}, `{"b":["1"]}`)
	f(`<p:a xmlns:p="u" p:k="v" k2="w"><p:b>1</p:b><q:b xmlns:q="u">2</q:b></p:a>`, strip, `{"@k":"v","@k2":"w","b":["1","2"]}`)
	f(`<p:a xmlns:p="u" p:k="v"><p:b>1</p:b><q:b xmlns:q="u">2</q:b></p:a>`, Options{AttributePrefix: "@", KeepPrefix: true}, `{"@p:k":"v","p:b":"1","q:b":"2"}`)
	f(`<a k="v"> text </a>`, strip, `{"@k":"v","#text":" text "}`)
	f("<a>\r\n\t\"\\</a>", strip, `"\n\t\"\\"`)
}

func TestParseErrors(t *testing.T) {
	f := func(xml, want string) {
		t.Helper()
		var d Doc
		err := d.Parse([]byte(xml))
		if err == nil || err.Error() != want {
			t.Fatalf("Parse(%q): got %v; want %s", xml, err, want)
		}
	}
	f(``, "the document has no element")
	f(`<a>`, "an element is not closed at the end of the document")
	f(`<a></b>`, "element <a> is closed by </b>")
	f(`<a/><b/>`, "the document has more than one root element")
	f(`x<a/>`, "the document has text outside its root element")
	f(`<a>&nbsp;</a>`, "XML syntax error on line 1: invalid character entity &nbsp;")
}

// FuzzConvert: any input parses or fails cleanly, and what parses
// converts to valid JSON, whatever the options.
func FuzzConvert(f *testing.F) {
	f.Add([]byte(`<a k="v"><b>1</b><b>2</b>t<c/></a>`), true)
	f.Add([]byte(`<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><m:R xmlns:m="u" m:x="&lt;">&#x263A;</m:R></S:Body></S:Envelope>`), false)
	f.Add([]byte("<a>\xff\xfe</a>"), false)
	f.Add([]byte(`<a><![CDATA[<x>"]]></a>`), true)
	f.Fuzz(func(t *testing.T, b []byte, keep bool) {
		var d Doc
		if d.Parse(b) != nil {
			return
		}
		o := Options{KeepPrefix: keep, AttributePrefix: "@", Arrays: []string{"b"}}
		out := d.AppendJSON(nil, 0, &o)
		if !json.Valid(out) {
			t.Fatalf("AppendJSON(%q) = %q: not valid JSON", b, out)
		}
		// Every element converts alone too.
		for i := range d.nodes {
			if out := d.AppendJSON(nil, int32(i), &o); !json.Valid(out) {
				t.Fatalf("AppendJSON(%q, %d) = %q: not valid JSON", b, i, out)
			}
		}
	})
}
