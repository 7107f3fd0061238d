package config

import (
	"strconv"
	"strings"
)

// FieldError is one problem in a config, at the path of the value that has
// it, such as "routes[2].upstream" or `upstreams["my svc"].targets[0].url`.
// An empty Path means the whole document.
type FieldError struct {
	// Path locates the value: keys joined by ".", list indexes in "[i]",
	// map keys that are not identifier-like quoted in `["..."]`.
	Path string
	// Msg says what is wrong and what to change.
	Msg string
}

// Error returns "path: msg", or msg alone for the whole document.
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors lists every problem found in a config, in document order. Load,
// Parse and Validate return it (as error) when there is at least one.
type Errors []*FieldError

// Error returns the problems one per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems as errors, for errors.As and errors.Is.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// add records a problem at path.
func (es *Errors) add(path, msg string) {
	*es = append(*es, &FieldError{Path: path, Msg: msg})
}

// err returns es as an error, or nil (not a nil Errors in an interface)
// when there is no problem.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// pathField returns the path of the struct field or identifier-like map key
// name under path.
func pathField(path, name string) string {
	if !identLike(name) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// pathIndex returns the path of list element i under path.
func pathIndex(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// identLike reports whether a map key can be written bare in a path: it is
// non-empty and only letters, digits, '_' and '-'.
func identLike(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// didYouMean returns `; did you mean "x"?` for the candidate closest to s
// when it is close enough to be a likely typo, else "".
func didYouMean(s string, candidates []string) string {
	best, bestDist := "", len(s)/3+1
	if bestDist < 2 {
		bestDist = 2
	}
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + strconv.Quote(best) + "?"
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent bytes
// each cost 1, so "paht" is 1 away from "path".
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Long strings are never typos of a key; skip the quadratic work.
		if a == b {
			return 0
		}
		return 64
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
