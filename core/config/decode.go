package config

import (
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// decoder maps a generic tree onto a Go value by its `yaml` struct tags,
// collecting every problem with its path instead of stopping at the first.
type decoder struct {
	lookupEnv func(string) (string, bool)
	// lastKeyWins lets a repeated key override the earlier one. go-yaml
	// already rejects repeated keys, except those a merge key ("<<")
	// brings in; JSON has no merge keys, so there a repeated key is an
	// error.
	lastKeyWins bool
	errs        Errors
}

var (
	durationType = reflect.TypeFor[Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// decode stores v into dst, which must be settable. A nil v (null) leaves
// dst as it is.
func (d *decoder) decode(path string, v any, dst reflect.Value) {
	if v == nil {
		return
	}
	switch dst.Type() {
	case durationType:
		d.decodeUnit(path, `a duration such as "30s"`, v, dst, parseDurationInt)
		return
	case sizeType:
		d.decodeUnit(path, `a size such as "4MiB"`, v, dst, parseSizeInt)
		return
	case rateLimitsType:
		d.decodeRateLimits(path, v, dst)
		return
	case statusListType:
		d.decodeStatusList(path, v, dst)
		return
	case statusCodesType:
		d.decodeStatusCodes(path, v, dst)
		return
	}
	switch dst.Kind() {
	case reflect.Pointer:
		p := reflect.New(dst.Type().Elem())
		d.decode(path, v, p.Elem())
		dst.Set(p)
	case reflect.Struct:
		d.decodeStruct(path, v, dst)
	case reflect.Slice:
		d.decodeSlice(path, v, dst)
	case reflect.Map:
		d.decodeMap(path, v, dst)
	case reflect.String:
		d.decodeString(path, v, dst)
	case reflect.Int:
		d.decodeInt(path, v, dst)
	case reflect.Bool:
		d.decodeBool(path, v, dst)
	case reflect.Float64:
		d.decodeFloat(path, v, dst)
	default:
		d.errs.add(path, "config: unsupported Go type "+dst.Type().String())
	}
}

// structField is a struct field a key can set.
type structField struct {
	key   string
	index int
}

func fieldsOf(t reflect.Type) []structField {
	fields := make([]structField, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || key == "-" {
			continue
		}
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		fields = append(fields, structField{key: key, index: i})
	}
	return fields
}

func (d *decoder) decodeStruct(path string, v any, dst reflect.Value) {
	m, ok := v.(mapping)
	if !ok {
		d.mismatch(path, "a mapping", v)
		return
	}
	fields := fieldsOf(dst.Type())
	seen := make(map[string]bool, len(m))
	for _, mem := range m {
		p := pathField(path, mem.key)
		f, ok := findField(fields, mem.key)
		switch {
		case !ok:
			d.errs.add(p, unknownFieldMsg(mem.key, fields))
		case seen[mem.key] && !d.lastKeyWins:
			d.errs.add(p, "given twice; keep one")
		default:
			seen[mem.key] = true
			d.decode(p, mem.value, dst.Field(f.index))
		}
	}
}

func findField(fields []structField, key string) (structField, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return structField{}, false
}

func unknownFieldMsg(key string, fields []structField) string {
	known := make([]string, len(fields))
	for i, f := range fields {
		known[i] = f.key
	}
	return "unknown field " + strconv.Quote(key) + " (known: " + strings.Join(known, ", ") + ")" + didYouMean(key, known)
}

func (d *decoder) decodeSlice(path string, v any, dst reflect.Value) {
	l, ok := v.([]any)
	if !ok {
		d.mismatch(path, "a list", v)
		return
	}
	s := reflect.MakeSlice(dst.Type(), len(l), len(l))
	for i, e := range l {
		d.decode(pathIndex(path, i), e, s.Index(i))
	}
	dst.Set(s)
}

func (d *decoder) decodeMap(path string, v any, dst reflect.Value) {
	m, ok := v.(mapping)
	if !ok {
		d.mismatch(path, "a mapping", v)
		return
	}
	if dst.Type().Key().Kind() != reflect.String {
		d.errs.add(path, "config: unsupported Go type "+dst.Type().String())
		return
	}
	out := reflect.MakeMapWithSize(dst.Type(), len(m))
	elemType := dst.Type().Elem()
	for _, mem := range m {
		p := pathField(path, mem.key)
		key := reflect.ValueOf(mem.key).Convert(dst.Type().Key())
		if out.MapIndex(key).IsValid() && !d.lastKeyWins {
			d.errs.add(p, "given twice; keep one")
			continue
		}
		e := reflect.New(elemType).Elem()
		d.decode(p, mem.value, e)
		out.SetMapIndex(key, e)
	}
	dst.Set(out)
}

// scalar returns v's text for a conversion to a scalar type, with ${VAR}
// expanded in strings. ok is false, and the problem recorded, when v is
// not a scalar or its expansion fails.
func (d *decoder) scalar(path, want string, v any) (text string, ok bool) {
	switch v := v.(type) {
	case string:
		s, err := expandEnv(v, d.lookupEnv)
		if err != nil {
			d.errs.add(path, err.Error())
			return "", false
		}
		return s, true
	case number:
		return string(v), true
	case bool:
		return strconv.FormatBool(v), true
	}
	d.mismatch(path, want, v)
	return "", false
}

func (d *decoder) decodeString(path string, v any, dst reflect.Value) {
	switch v.(type) {
	case number, bool:
		d.errs.add(path, "want a string, got "+describe(v)+"; quote it to keep it as text: "+strconv.Quote(scalarText(v)))
		return
	}
	if s, ok := d.scalar(path, "a string", v); ok {
		dst.SetString(s)
	}
}

// numeric returns v's text for a number-like field (integer, float,
// duration, size): any scalar but a boolean. want describes the value in
// errors.
func (d *decoder) numeric(path, want string, v any) (string, bool) {
	if _, isBool := v.(bool); isBool {
		d.mismatch(path, want, v)
		return "", false
	}
	return d.scalar(path, want, v)
}

func (d *decoder) decodeInt(path string, v any, dst reflect.Value) {
	s, ok := d.numeric(path, "an integer", v)
	if !ok {
		return
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, dst.Type().Bits())
	switch {
	case errors.Is(err, strconv.ErrRange):
		d.errs.add(path, "integer "+strings.TrimSpace(s)+" is out of range; the largest is "+strconv.FormatInt(1<<(dst.Type().Bits()-1)-1, 10))
	case err != nil:
		d.errs.add(path, "want an integer, got "+describe(scalarOf(v, s)))
	default:
		dst.SetInt(n)
	}
}

func (d *decoder) decodeFloat(path string, v any, dst reflect.Value) {
	s, ok := d.numeric(path, "a number", v)
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.errs.add(path, "want a number such as 0.5, got "+describe(scalarOf(v, s)))
		return
	}
	dst.SetFloat(f)
}

func (d *decoder) decodeBool(path string, v any, dst reflect.Value) {
	if _, isNum := v.(number); isNum {
		d.mismatch(path, "true or false", v)
		return
	}
	s, ok := d.scalar(path, "true or false", v)
	if !ok {
		return
	}
	switch strings.TrimSpace(s) {
	case "true":
		dst.SetBool(true)
	case "false":
		dst.SetBool(false)
	default:
		d.errs.add(path, "want true or false, got "+describe(scalarOf(v, s)))
	}
}

// decodeUnit decodes a duration or size: a string (or number) that parse
// turns into an int64. want describes the value in errors.
func (d *decoder) decodeUnit(path, want string, v any, dst reflect.Value, parse func(string) (int64, error)) {
	s, ok := d.numeric(path, want, v)
	if !ok {
		return
	}
	n, err := parse(s)
	if err != nil {
		d.errs.add(path, err.Error())
		return
	}
	dst.SetInt(n)
}

func parseDurationInt(s string) (int64, error) {
	v, err := ParseDuration(s)
	return int64(v), err
}

func parseSizeInt(s string) (int64, error) {
	v, err := ParseSize(s)
	return int64(v), err
}

func (d *decoder) mismatch(path, want string, v any) {
	d.errs.add(path, "want "+want+", got "+describe(v))
}

// scalarOf returns the value to describe for a scalar v whose text, after
// expansion, is s: a string shows its expanded text.
func scalarOf(v any, s string) any {
	if _, ok := v.(string); ok {
		return s
	}
	return v
}

func scalarText(v any) string {
	switch v := v.(type) {
	case number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// describe names the kind and, for a scalar, the value of v, for "got ..."
// in messages.
func describe(v any) string {
	switch v := v.(type) {
	case mapping:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		if len(v) > 64 {
			v = v[:61] + "..."
		}
		return "string " + strconv.Quote(v)
	case number:
		return "number " + string(v)
	case bool:
		return strconv.FormatBool(v)
	case foreign:
		return string(v)
	case nil:
		return "null"
	}
	return "a value of Go type " + reflect.TypeOf(v).String()
}
