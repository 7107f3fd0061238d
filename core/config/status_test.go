package config

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

// codesRange returns lo..hi.
func codesRange(lo, hi int) []int {
	var codes []int
	for c := lo; c <= hi; c++ {
		codes = append(codes, c)
	}
	return codes
}

// TestStatusListDecode decodes retries.on and on_status written with bare
// numbers, quoted numbers and classes, in YAML and JSON.
func TestStatusListDecode(t *testing.T) {
	f := func(format, doc string) {
		t.Helper()
		c, err := ParseChecked([]byte(doc), format, noEnv, nil)
		if err != nil {
			t.Fatalf("ParseChecked(%s): %s", format, err)
		}
		u := c.Upstreams["users"]
		if want := (StatusList{"connect_error", "502", "503", "5xx"}); !reflect.DeepEqual(u.Retries.On, want) {
			t.Fatalf("%s: retries.on: got %q; want %q", format, u.Retries.On, want)
		}
		if got, want := u.Retries.Statuses(), codesRange(500, 599); !slices.Equal(got, want) {
			t.Fatalf("%s: Retries.Statuses(): got %v; want %v", format, got, want)
		}
		wantCodes := append(codesRange(400, 499), 500, 502)
		if got := []int(u.Health.Passive.OnStatus); !slices.Equal(got, append([]int{500, 502}, codesRange(400, 499)...)) {
			t.Fatalf("%s: on_status: got %v; want 500, 502, 400-499", format, got)
		}
		if got := u.Health.Passive.Statuses(); !slices.Equal(got, wantCodes) {
			t.Fatalf("%s: PassiveHealth.Statuses(): got %v; want %v", format, got, wantCodes)
		}
	}
	f("yaml", `
upstreams:
  users:
    targets: [{url: "http://a:1"}]
    retries: {on: [connect_error, 502, "503", 5xx]}
    health: {passive: {on_status: [500, "502", 4XX]}}
routes: [{upstream: users}]
`)
	f("json", `{
  "upstreams": {"users": {
    "targets": [{"url": "http://a:1"}],
    "retries": {"on": ["connect_error", 502, "503", "5xx"]},
    "health": {"passive": {"on_status": [500, "502", "4XX"]}}
  }},
  "routes": [{"upstream": "users"}]
}`)
}

// TestStatusListErrors checks the errors of bad entries, at the index
// written in the document, decoding and validation together.
func TestStatusListErrors(t *testing.T) {
	f := func(format, upstream string, want ...string) {
		t.Helper()
		doc := "upstreams:\n  u: " + upstream + "\nroutes: [{upstream: u}]\n"
		if format == "json" {
			doc = `{"upstreams": {"u": ` + upstream + `}, "routes": [{"upstream": "u"}]}`
		}
		_, err := ParseChecked([]byte(doc), format, noEnv, nil)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != strings.Join(want, "\n") {
			t.Fatalf("ParseChecked(%s):\ngot  %s\nwant %s", doc, got, strings.Join(want, "\n"))
		}
	}
	const tg = `targets: [{url: "http://a:1"}]`
	f("yaml", `{retries: {on: [true, 6xx, "50", 5xy, 600, 5000, 502.5, null, [502], connect_error]}, `+tg+`}`,
		`upstreams.u.retries.on[0]: want a status such as 502 or "5xx", got true`,
		`upstreams.u.retries.on[7]: want a status such as 502 or "5xx", got null`,
		`upstreams.u.retries.on[8]: want a status such as 502 or "5xx", got a list`,
		`upstreams.u.retries.on[1]: "6xx" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[2]: "50" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[3]: "5xy" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[4]: "600" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[5]: "5000" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[6]: "502.5" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`)
	f("yaml", `{retries: {on: 5xx}, health: {passive: {on_status: 500}}, `+tg+`}`,
		`upstreams.u.retries.on: want a list such as [502, "5xx"], got string "5xx"`,
		`upstreams.u.health.passive.on_status: want a list such as [502, "5xx"], got number 500`)
	f("yaml", `{health: {passive: {on_status: [5xx, 200, "3xx", connect_error, false, 503]}}, `+tg+`}`,
		`upstreams.u.health.passive.on_status[1]: "200" is not a status (400-599) or a class (4xx, 5xx)`,
		`upstreams.u.health.passive.on_status[2]: "3xx" is not a status (400-599) or a class (4xx, 5xx)`,
		`upstreams.u.health.passive.on_status[3]: "connect_error" is not a status (400-599) or a class (4xx, 5xx)`,
		`upstreams.u.health.passive.on_status[4]: want a status such as 502 or "5xx", got false`)
	f("json", `{"retries": {"on": ["6xx", 302, "timeout"]}, "health": {"passive": {"on_status": [404, "1xx"]}}, "targets": [{"url": "http://a:1"}]}`,
		`upstreams.u.health.passive.on_status[1]: "1xx" is not a status (400-599) or a class (4xx, 5xx)`,
		`upstreams.u.retries.on[0]: "6xx" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[1]: "302" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`)
}

// TestStatusListValidateGo checks that Validate guards the lists of a
// config built in Go, which skips decoding.
func TestStatusListValidateGo(t *testing.T) {
	c := mustParse(t, "upstreams:\n  u: {targets: [{url: \"http://a:1\"}]}\nroutes: [{upstream: u}]\n", "yaml")
	c.SetDefaults(nil)
	u := c.Upstreams["u"]
	u.Retries.On = StatusList{"5xx", " 502", "RESET"}
	u.Health.Passive.OnStatus = StatusCodes{503, 200}
	want := strings.Join([]string{
		`upstreams.u.retries.on[1]: " 502" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.retries.on[2]: "RESET" is not a status (400-599), a class (4xx, 5xx) or one of connect_error, reset, timeout`,
		`upstreams.u.health.passive.on_status[1]: must be a status 400-599, got 200`,
	}, "\n")
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Fatalf("Validate:\ngot  %v\nwant %s", err, want)
	}
}

func TestStatusListCodes(t *testing.T) {
	f := func(l StatusList, want []int, wantErr string) {
		t.Helper()
		got, err := l.Codes()
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if !slices.Equal(got, want) || gotErr != wantErr {
			t.Fatalf("%q.Codes(): got %v, %q; want %v, %q", l, got, gotErr, want, wantErr)
		}
	}
	f(nil, nil, "")
	f(StatusList{}, nil, "")
	f(StatusList{"503", "502", "503"}, []int{502, 503}, "")
	f(StatusList{"4xX", "599", "400"}, append(codesRange(400, 499), 599), "")
	f(StatusList{"5XX", "4xx"}, codesRange(400, 599), "")
	f(StatusList{"502", "timeout"}, nil, `config: "timeout" is not a status (400-599) or a class (4xx, 5xx)`)
	f(StatusList{"399"}, nil, `config: "399" is not a status (400-599) or a class (4xx, 5xx)`)
}

func TestParseStatus(t *testing.T) {
	f := func(s string, lo, hi int, ok bool) {
		t.Helper()
		gotLo, gotHi, gotOK := parseStatus(s)
		if gotLo != lo || gotHi != hi || gotOK != ok {
			t.Fatalf("parseStatus(%q): got %d, %d, %v; want %d, %d, %v", s, gotLo, gotHi, gotOK, lo, hi, ok)
		}
	}
	f("400", 400, 400, true)
	f("599", 599, 599, true)
	f("4xx", 400, 499, true)
	f("5XX", 500, 599, true)
	f("5Xx", 500, 599, true)
	for _, s := range []string{"", "399", "600", "1xx", "2xx", "3xx", "6xx", "5x", "5xxx", "50x", "5x0", "+502", "0502", " 502", "502 ", "5\x00\x00", "5XY", "5:8"} {
		f(s, 0, 0, false)
	}
}

// TestRetriesStatusesDefault checks that the default On retries 502-504.
func TestRetriesStatusesDefault(t *testing.T) {
	r := Retries{On: slices.Clone(DefaultRetryOn)}
	if got, want := r.Statuses(), []int{502, 503, 504}; !slices.Equal(got, want) {
		t.Fatalf("Statuses() of DefaultRetryOn: got %v; want %v", got, want)
	}
	p := PassiveHealth{OnStatus: StatusCodes{504, 500, 504, 200, 700}}
	if got, want := p.Statuses(), []int{500, 504}; !slices.Equal(got, want) {
		t.Fatalf("PassiveHealth.Statuses(): got %v; want %v", got, want)
	}
	if got := (&Retries{On: StatusList{}}).Statuses(); got != nil {
		t.Fatalf("Statuses() of an empty On: got %v; want nil", got)
	}
}

// TestStatusListMarshaled checks that lists with classes survive a JSON
// round trip (Config.clone's): On as written, OnStatus expanded.
func TestStatusListMarshaled(t *testing.T) {
	want := mustParse(t, `
upstreams:
  u: {targets: [{url: "http://a:1"}], retries: {on: [reset, 5xx, 429]}, health: {passive: {on_status: [4xx]}}}
routes: [{upstream: u}]
`, "yaml")
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustParse(t, string(data), "json"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Parse(json) of\n%s\ngot  %s\nwant %s", data, dump(got), dump(want))
	}
	if got := want.clone(); !reflect.DeepEqual(got, want) {
		t.Fatalf("clone:\ngot  %s\nwant %s", dump(got), dump(want))
	}
}

// FuzzParseStatus: any string parses or fails without a panic, a parsed
// entry is a code or a whole class within 400-599, and a code written back
// parses to itself.
func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"502", "5xx", "4XX", "399", "600", "6xx", "5x", "timeout", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, ok := parseStatus(s)
		if !ok {
			return
		}
		if lo < 400 || hi > 599 || !(lo == hi || lo%100 == 0 && hi == lo+99) {
			t.Fatalf("parseStatus(%q) = %d, %d; want a code or a class within 400-599", s, lo, hi)
		}
		if lo == hi && s != strconv.Itoa(lo) {
			t.Fatalf("parseStatus(%q) = %d; want only its three digits to parse to it", s, lo)
		}
	})
}
