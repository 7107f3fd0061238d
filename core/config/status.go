package config

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
)

// StatusList is a list of failure statuses as written in the config, each
// a status code 400-599 or a class, "4xx" or "5xx" in any case, meaning
// 400-499 or 500-599. In a document a code may be a number or a string:
// [502, "503", 5xx] decodes to {"502", "503", "5xx"}, in YAML and JSON.
// Retries.On, a StatusList, also holds the retry conditions
// connect_error, reset and timeout.
//
// A StatusList is plain data: read-only, and then safe for concurrent
// reads, once its config is validated.
type StatusList []string

// Codes returns the status codes l lists, classes expanded, ascending and
// without duplicates; nil for an empty l. An entry that is neither a
// status 400-599 nor a class is an error naming it.
func (l StatusList) Codes() ([]int, error) {
	var set statusSet
	for _, s := range l {
		if !set.addEntry(s) {
			return nil, errors.New("config: " + notAStatusMsg(s))
		}
	}
	return set.codes(), nil
}

// StatusCodes is a list of failure status codes 400-599. In a document each
// entry is a code, a number or a string (502, "503"), or a class, "4xx" or
// "5xx" in any case, which decodes to its hundred codes: [500, 5xx] is
// 500-599. A bad entry is a decoding error at its own index. It is
// PassiveHealth.OnStatus, a list of ints that the core ranges over.
//
// A StatusCodes is plain data: read-only, and then safe for concurrent
// reads, once its config is validated.
type StatusCodes []int

// Statuses returns the status codes retried (On without connect_error,
// reset and timeout), classes expanded, ascending and without duplicates;
// nil when none. Entries Validate refuses are left out. The core compiles
// On's statuses from it.
func (r *Retries) Statuses() []int {
	var set statusSet
	for _, s := range r.On {
		set.addEntry(s)
	}
	return set.codes()
}

// Statuses returns the status codes counted as failures, ascending and
// without duplicates; nil when none. Codes Validate refuses are left out.
// The core compiles OnStatus from it, so that OnStatus's type can change
// without the core changing.
func (p *PassiveHealth) Statuses() []int {
	var set statusSet
	for _, code := range p.OnStatus {
		set.add(code, code)
	}
	return set.codes()
}

// isRetryCondition reports whether s is one of the Retries.On entries that
// are not statuses.
func isRetryCondition(s string) bool {
	return s == RetryConnectError || s == RetryReset || s == RetryTimeout
}

// parseStatus parses a StatusList entry: a code 400-599 (three digits) or
// a class 4xx or 5xx (any case), as the inclusive range lo-hi.
func parseStatus(s string) (lo, hi int, ok bool) {
	if len(s) != 3 || s[0] != '4' && s[0] != '5' {
		return 0, 0, false
	}
	hundreds := int(s[0]-'0') * 100
	switch {
	case s[1]|0x20 == 'x' && s[2]|0x20 == 'x':
		return hundreds, hundreds + 99, true
	case isASCIIDigit(s[1]) && isASCIIDigit(s[2]):
		code := hundreds + int(s[1]-'0')*10 + int(s[2]-'0')
		return code, code, true
	}
	return 0, 0, false
}

func isASCIIDigit(c byte) bool { return c >= '0' && c <= '9' }

// notAStatusMsg says that the StatusList entry s is not a status.
func notAStatusMsg(s string) string {
	return strconv.Quote(s) + " is not a status (400-599) or a class (4xx, 5xx)"
}

// notARetryConditionMsg says that the Retries.On entry s is neither a
// status nor a retry condition.
func notARetryConditionMsg(s string) string {
	return strconv.Quote(s) + " is not a status (400-599), a class (4xx, 5xx) or one of " +
		RetryConnectError + ", " + RetryReset + ", " + RetryTimeout
}

// statusSet is a set of status codes 400-599.
type statusSet [200]bool

// addEntry adds the codes of a StatusList entry and reports whether it is
// one (not a retry condition, nor invalid).
func (s *statusSet) addEntry(entry string) bool {
	lo, hi, ok := parseStatus(entry)
	if ok {
		s.add(lo, hi)
	}
	return ok
}

// add adds lo-hi, ignoring codes outside 400-599.
func (s *statusSet) add(lo, hi int) {
	for code := max(lo, 400); code <= min(hi, 599); code++ {
		s[code-400] = true
	}
}

func (s *statusSet) codes() []int {
	var codes []int
	for i, in := range s {
		if in {
			codes = append(codes, 400+i)
		}
	}
	return codes
}

var (
	statusListType  = reflect.TypeFor[StatusList]()
	statusCodesType = reflect.TypeFor[StatusCodes]()
)

// decodeStatusList decodes a list of statuses, classes and, for
// Retries.On, conditions: each entry a number or a string (see
// StatusList), kept as written but for surrounding spaces. Validate
// checks the entries.
func (d *decoder) decodeStatusList(path string, v any, dst reflect.Value) {
	l, ok := v.([]any)
	if !ok {
		d.mismatch(path, `a list such as [502, "5xx"]`, v)
		return
	}
	// an entry that fails to decode stays "", so the indexes of Validate's
	// errors match the document's
	out := make(StatusList, len(l))
	for i, e := range l {
		if s, ok := d.numeric(pathIndex(path, i), `a status such as 502 or "5xx"`, e); ok {
			out[i] = strings.TrimSpace(s)
		}
	}
	dst.Set(reflect.ValueOf(out))
}

// decodeStatusCodes decodes a list of statuses and classes (see
// StatusCodes), classes expanded in place. An entry that is neither is an
// error at its index: once classes are expanded, later indexes no longer
// match the document's, so Validate could not name it.
func (d *decoder) decodeStatusCodes(path string, v any, dst reflect.Value) {
	l, ok := v.([]any)
	if !ok {
		d.mismatch(path, `a list such as [502, "5xx"]`, v)
		return
	}
	out := make(StatusCodes, 0, len(l))
	for i, e := range l {
		p := pathIndex(path, i)
		s, ok := d.numeric(p, `a status such as 502 or "5xx"`, e)
		if !ok {
			continue
		}
		s = strings.TrimSpace(s)
		lo, hi, ok := parseStatus(s)
		if !ok {
			d.errs.add(p, notAStatusMsg(s))
			continue
		}
		for code := lo; code <= hi; code++ {
			out = append(out, code)
		}
	}
	dst.Set(reflect.ValueOf(out))
}
