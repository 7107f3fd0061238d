package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-json"
	"github.com/goccy/go-yaml"
)

// Load reads the config file at path, YAML (".yaml", ".yml") or JSON
// (".json") by its extension, expanding ${VAR} from the process
// environment. See Parse.
func Load(path string) (*Config, error) {
	data, format, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, format, os.LookupEnv)
}

// readFile reads a config file and tells its format by the extension.
func readFile(path string) (data []byte, format string, err error) {
	if format, err = formatOf(path); err != nil {
		return nil, "", err
	}
	if data, err = os.ReadFile(path); err != nil {
		return nil, "", fmt.Errorf("config: %w", err)
	}
	return data, format, nil
}

func formatOf(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".yaml", ".yml":
		return "yaml", nil
	case ".json":
		return "json", nil
	default:
		return "", Errors{{Msg: fmt.Sprintf("config: file %q has extension %q; name it *.yaml, *.yml or *.json", path, ext)}}
	}
}

// Parse decodes a config document in format "yaml" or "json" strictly: an
// unknown key, a value of the wrong type or a bad ${VAR} is an error at its
// path, and every such problem is returned, as Errors. A null value leaves
// its field zero.
//
// In string values (not keys), ${VAR} is replaced by the variable's value
// from lookupEnv, ${VAR:-default} by the default when VAR is unset or
// empty, and $$ by a single $. Expansion happens before the value is
// converted, so numbers, durations and sizes may come from variables too. A
// nil lookupEnv has no variables.
//
// Parse does not apply defaults nor validate: call SetDefaults, then
// Validate. The Config returned is plain data owned by the caller: once
// validated it may be read from many goroutines, but not changed.
func Parse(data []byte, format string, lookupEnv func(string) (string, bool)) (*Config, error) {
	c, errs, err := parse(data, format, lookupEnv)
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// parse decodes what it can: the Config holds every value that decoded, and
// errs the values that did not. err is a document that could not be read
// at all (syntax, format).
func parse(data []byte, format string, lookupEnv func(string) (string, bool)) (c *Config, errs Errors, err error) {
	tree, err := parseTree(data, format)
	if err != nil {
		return nil, nil, err
	}
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	d := decoder{lookupEnv: lookupEnv, lastKeyWins: format == "yaml"}
	c = &Config{}
	d.decode("", tree, reflect.ValueOf(c).Elem())
	return c, d.errs, nil
}

// LoadChecked is Load, SetDefaults(d) and Validate in one, reporting the
// problems of decoding and of validation together, so a user fixes every
// one in a single pass (what `fastgate -check` prints). Validation problems
// at or under a path that failed to decode are left out: the decoding
// problem already names it.
func LoadChecked(path string, d *Defaults) (*Config, error) {
	data, format, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return ParseChecked(data, format, os.LookupEnv, d)
}

// ParseChecked is Parse, SetDefaults(d) and Validate in one; see LoadChecked.
func ParseChecked(data []byte, format string, lookupEnv func(string) (string, bool), d *Defaults) (*Config, error) {
	c, errs, err := parse(data, format, lookupEnv)
	if err != nil {
		return nil, err
	}
	c.SetDefaults(d)
	if verr := c.Validate(); verr != nil {
		for _, e := range verr.(Errors) {
			if !underAny(e.Path, errs) {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

// underAny reports whether path is at or under the path of one of errs.
func underAny(path string, errs Errors) bool {
	for _, e := range errs {
		if e.Path == "" {
			continue
		}
		if path == e.Path || strings.HasPrefix(path, e.Path) && (path[len(e.Path)] == '.' || path[len(e.Path)] == '[') {
			return true
		}
	}
	return false
}

// The generic tree a document is decoded into before it is mapped onto
// Config: mapping, []any, string, number, bool, foreign or nil.
type (
	// mapping is a YAML mapping or JSON object, its keys in document order.
	mapping []member
	member  struct {
		key   string
		value any
	}
	// number is a YAML or JSON number in decimal text, kept as text so an
	// integer stays exact.
	number string
	// foreign is a YAML value of a kind a config never holds, such as
	// binary data; the string describes it.
	foreign string
)

func parseTree(data []byte, format string) (any, error) {
	switch format {
	case "yaml":
		return parseYAML(data)
	case "json":
		return parseJSON(data)
	default:
		return nil, Errors{{Msg: fmt.Sprintf(`config: unknown format %q; use "yaml" or "json"`, format)}}
	}
}

// maxTreeValues bounds the values of a document after YAML aliases are
// expanded, so a "billion laughs" document fails instead of exhausting
// memory.
const maxTreeValues = 1 << 20

func parseYAML(data []byte) (any, error) {
	var v any
	if err := yaml.UnmarshalWithOptions(data, &v, yaml.UseOrderedMap()); err != nil {
		return nil, Errors{{Msg: yamlErrorMsg(err)}}
	}
	budget := maxTreeValues
	t := fromYAML(v, &budget)
	if budget < 0 {
		return nil, Errors{{Msg: fmt.Sprintf("config: the document has more than %d values once its aliases are expanded; write it out or use fewer aliases", maxTreeValues)}}
	}
	return t, nil
}

func yamlErrorMsg(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		pos := ye.GetToken().Position
		return fmt.Sprintf("config: invalid YAML at line %d, column %d: %s", pos.Line, pos.Column, ye.GetMessage())
	}
	return "config: invalid YAML: " + err.Error()
}

// fromYAML converts what go-yaml decoded into the generic tree, spending
// one unit of budget per value.
func fromYAML(v any, budget *int) any {
	if *budget--; *budget < 0 {
		return nil
	}
	switch v := v.(type) {
	case nil, string, bool:
		return v
	case yaml.MapSlice:
		m := make(mapping, 0, len(v))
		for _, it := range v {
			m = append(m, member{key: fmt.Sprint(it.Key), value: fromYAML(it.Value, budget)})
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = fromYAML(e, budget)
		}
		return l
	case uint64:
		return number(strconv.FormatUint(v, 10))
	case int64:
		return number(strconv.FormatInt(v, 10))
	case float64:
		return number(strconv.FormatFloat(v, 'g', -1, 64))
	case []byte:
		return foreign("binary data")
	default:
		return foreign(fmt.Sprintf("a YAML value of Go type %T", v))
	}
}

// maxJSONDepth bounds the nesting of a JSON document; a config needs 6.
const maxJSONDepth = 100

// parseJSON decodes a JSON document token by token, so object keys keep
// their order (errors then come in document order) and numbers stay exact.
func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readJSON(dec, 0)
	if err != nil {
		return nil, Errors{{Msg: jsonErrorMsg(data, dec.InputOffset(), err)}}
	}
	end := dec.InputOffset()
	if _, err = dec.Token(); err == io.EOF {
		return v, nil
	}
	if err == nil {
		end += int64(len(data[end:]) - len(bytes.TrimLeft(data[end:], " \t\r\n")))
		err = errors.New("unexpected data after the top-level value")
	}
	return nil, Errors{{Msg: jsonErrorMsg(data, end, err)}}
}

// jsonErrorMsg describes err, which happened at data[offset] unless err
// says where.
func jsonErrorMsg(data []byte, offset int64, err error) string {
	if len(bytes.TrimSpace(data)) == 0 {
		return `config: the JSON document is empty; write at least "{}"`
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		offset = se.Offset
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err, offset = errors.New("unexpected end of the document"), int64(len(data))
	}
	line, col := lineColumn(data, offset)
	return fmt.Sprintf("config: invalid JSON at line %d, column %d: %v", line, col, err)
}

// lineColumn returns the 1-based line and column of data[offset].
func lineColumn(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func readJSON(dec *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return readJSONObject(dec, depth)
		case '[':
			return readJSONArray(dec, depth)
		}
		return nil, fmt.Errorf("unexpected %q", rune(t))
	case json.Number:
		return number(t), nil
	case float64:
		return number(strconv.FormatFloat(t, 'g', -1, 64)), nil
	case string, bool, nil:
		return t, nil
	default:
		return nil, fmt.Errorf("unexpected token %v", t)
	}
}

func readJSONObject(dec *json.Decoder, depth int) (any, error) {
	m := mapping{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("object key %v is not a string", tok)
		}
		v, err := readJSON(dec, depth+1)
		if err != nil {
			return nil, err
		}
		m = append(m, member{key: key, value: v})
	}
	return m, readJSONEnd(dec, '}')
}

func readJSONArray(dec *json.Decoder, depth int) (any, error) {
	l := []any{}
	for dec.More() {
		v, err := readJSON(dec, depth+1)
		if err != nil {
			return nil, err
		}
		l = append(l, v)
	}
	return l, readJSONEnd(dec, ']')
}

func readJSONEnd(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("want %q, got %v", rune(want), tok)
	}
	return nil
}

// expandEnv replaces ${VAR} and ${VAR:-default} in s and $$ with $. A
// default is literal text up to the first "}". A "$" followed by anything
// else is kept as is.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (string, error) {
	if strings.IndexByte(s, '$') < 0 {
		return s, nil // fast path: nothing to expand
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
		case '{':
			v, rest, err := expandVar(s[i:], lookupEnv)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			s = rest
		default:
			b.WriteByte('$')
			s = s[i+1:]
		}
	}
}

// expandVar expands the ${...} that s starts with and returns the text
// after it.
func expandVar(s string, lookupEnv func(string) (string, bool)) (value, rest string, err error) {
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return "", "", fmt.Errorf("unclosed %q; write ${NAME} or ${NAME:-default}, or $$ for a literal $", s)
	}
	expr := s[2:end]
	name, def, hasDef := strings.Cut(expr, ":-")
	if !validEnvName(name) {
		return "", "", fmt.Errorf("malformed %q: %q is not a variable name (letters, digits and '_', not starting with a digit); write ${NAME} or ${NAME:-default}, or $$ for a literal $", s[:end+1], name)
	}
	v, ok := lookupEnv(name)
	switch {
	case hasDef && v == "":
		v = def
	case !ok:
		return "", "", fmt.Errorf("environment variable %q is not set (set it, or write ${%s:-default})", name, name)
	}
	return v, s[end+1:], nil
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) {
			return false
		}
	}
	return true
}
