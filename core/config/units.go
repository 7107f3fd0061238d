package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a string with a unit, such as
// "250ms", "30s" or "2m" (see time.ParseDuration). A bare number other than
// 0 is rejected: "30" could be seconds or milliseconds. Negative durations
// are rejected.
//
// *Duration implements flag.Value, so a command-line flag can use it.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String returns d in time.Duration's format, such as "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a JSON string, such as "30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, d.String()), nil
}

// UnmarshalJSON reads what MarshalJSON writes (and a bare number of
// nanoseconds), so a Config round-trips through encoding/json.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if s, err := strconv.Unquote(string(b)); err == nil {
		return d.Set(s)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	*d = Duration(n)
	return err
}

// MarshalYAML writes d as a YAML string, such as "30s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Set parses s into d; with String it makes *Duration a flag.Value.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration parses a non-negative duration with a unit, such as "250ms"
// or "2m". "0" is accepted as zero.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New(`empty duration; write a number with a unit, such as "30s"`)
	}
	if isDecimal(s) {
		if strings.Trim(s, "0.") == "" {
			return 0, nil
		}
		return 0, errors.New(`duration ` + strconv.Quote(s) + ` has no unit; write one, such as "` + s + `s" or "` + s + `ms" (units: ns, us, ms, s, m, h)`)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New(`invalid duration ` + strconv.Quote(s) + `; write a number with a unit, such as "250ms", "30s" or "1m30s" (units: ns, us, ms, s, m, h)`)
	}
	if d < 0 {
		return 0, errors.New(`duration ` + strconv.Quote(s) + ` is negative; it must be >= 0`)
	}
	return Duration(d), nil
}

// isDecimal reports whether s is an optionally signed decimal number
// without a unit, such as "30", "-1" or "1.5".
func isDecimal(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" {
		return false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c != '.':
			return false
		}
	}
	return digits > 0
}

// Size is a byte count, written as a non-negative integer (bytes) or a
// string with an optional unit: "512", "512B", "64KB" (KB, MB, GB are
// 1000-based), "64KiB" (KiB, MiB, GiB are 1024-based). Units are matched
// case-insensitively and may follow the number after spaces.
//
// *Size implements flag.Value, so a command-line flag can use it.
type Size int64

// Int returns s as an int, for APIs such as fasthttp's that take one.
func (s Size) Int() int { return int(s) }

// String returns s with the largest binary unit that divides it exactly,
// such as "4MiB" or "8KiB", else in bytes, such as "1000B".
func (s Size) String() string {
	for _, u := range binaryUnits {
		if s != 0 && s%Size(u.mult) == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalJSON writes s as a JSON string, such as "4MiB".
func (s Size) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, s.String()), nil
}

// UnmarshalJSON reads what MarshalJSON writes (and a bare number of bytes).
func (s *Size) UnmarshalJSON(b []byte) error {
	if v, err := strconv.Unquote(string(b)); err == nil {
		return s.Set(v)
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	*s = Size(n)
	return err
}

// MarshalYAML writes s as a YAML string, such as "4MiB".
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// Set parses v into s; with String it makes *Size a flag.Value.
func (s *Size) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = n
	return nil
}

type sizeUnit struct {
	name string
	mult int64
}

// binaryUnits are the units Size.String uses, largest first.
var binaryUnits = []sizeUnit{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

var sizeUnits = []sizeUnit{
	{"B", 1},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
}

const sizeUnitNames = "B, KB, MB, GB, KiB, MiB, GiB"

// ParseSize parses a byte count such as "512", "512B", "64KB", "64 KiB" or
// "4MiB".
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	switch {
	case strings.HasPrefix(s, "-"):
		return 0, errors.New("size " + strconv.Quote(s) + " is negative; it must be >= 0")
	case end < len(s) && s[end] == '.':
		return 0, errors.New("size " + strconv.Quote(s) + ` is not a whole number; use a smaller unit, such as "1536KiB" for 1.5MiB`)
	case end == 0:
		return 0, errors.New("invalid size " + strconv.Quote(s) + `; write a whole number of bytes with an optional unit, such as "512", "64KiB" or "4MiB" (units: ` + sizeUnitNames + ")")
	}
	mult, ok := sizeMultiplier(strings.TrimSpace(s[end:]))
	if !ok {
		return 0, errors.New("size " + strconv.Quote(s) + " has an unknown unit " + strconv.Quote(strings.TrimSpace(s[end:])) + "; use one of " + sizeUnitNames)
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, errors.New("size " + strconv.Quote(s) + " is too large; it must be below 8EiB")
	}
	return Size(n * mult), nil
}

func sizeMultiplier(unit string) (int64, bool) {
	if unit == "" {
		return 1, true
	}
	for _, u := range sizeUnits {
		if strings.EqualFold(unit, u.name) {
			return u.mult, true
		}
	}
	return 0, false
}
