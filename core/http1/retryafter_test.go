package http1

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 2, 15, 4, 5, 0, time.UTC)
	f := func(v string, want time.Duration, wantOK bool) {
		t.Helper()
		got, ok := ParseRetryAfter([]byte(v), now)
		if got != want || ok != wantOK {
			t.Fatalf("ParseRetryAfter(%q): got %v, %v; want %v, %v", v, got, ok, want, wantOK)
		}
	}
	// delay-seconds
	f("0", 0, true)
	f("120", 2*time.Minute, true)
	f(" 7\t", 7*time.Second, true)
	f("0009", 9*time.Second, true)
	f("9223372036", 9223372036*time.Second, true)
	f("9223372037", math.MaxInt64, true)
	f("99999999999999999999999999", math.MaxInt64, true)

	// HTTP-date, the three forms; a past date waits 0
	f("Mon, 02 Jun 2025 15:05:35 GMT", 90*time.Second, true)
	f("Monday, 02-Jun-25 15:04:15 GMT", 10*time.Second, true)
	f("Mon Jun  2 16:04:05 2025", time.Hour, true)
	f("Mon, 02 Jun 2025 15:04:05 GMT", 0, true)
	f("Sun, 06 Nov 1994 08:49:37 GMT", 0, true)

	// invalid
	f("", 0, false)
	f("  ", 0, false)
	f("-1", 0, false)
	f("+5", 0, false)
	f("1.5", 0, false)
	f("5s", 0, false)
	f("12 34", 0, false)
	f("0x10", 0, false)
	f("soon", 0, false)
	f("Mon, 02 Jun 2025 15:05:35", 0, false)
	f("Mon, 02 Jun 2025 15:05:35 +0000", 0, false)
	f("2025-06-02T15:05:35Z", 0, false)
}

// TestParseRetryAfterDates checks the date form against net/http's
// ParseTime, whose semantics it copies.
func TestParseRetryAfterDates(t *testing.T) {
	now := time.Date(2025, 6, 2, 15, 4, 5, 0, time.UTC)
	f := func(v string) {
		t.Helper()
		want, err := http.ParseTime(v)
		got, ok := ParseRetryAfter([]byte(v), now)
		switch {
		case ok != (err == nil):
			t.Fatalf("ParseRetryAfter(%q): got ok %v; want %v (http.ParseTime: %v)", v, ok, err == nil, err)
		case ok && got != max(want.Sub(now), 0):
			t.Fatalf("ParseRetryAfter(%q): got %v; want %v", v, got, max(want.Sub(now), 0))
		}
	}
	f("Tue, 03 Jun 2025 15:04:05 GMT")
	f("Tuesday, 03-Jun-25 15:04:05 GMT")
	f("Tue Jun  3 15:04:05 2025")
	f("Tue, 03 Jun 2025 15:04:05 UTC")
	f("Tue, 3 Jun 2025 15:04:05 GMT")
	f("tue, 03 jun 2025 15:04:05 GMT")
	f("Tue, 03 Jun 2025 25:04:05 GMT")
}
