package grpc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"fastgate/core"
)

// build fills the request message: the JSON body (by the binding's body
// rule), then the path variables vars (or the route's path parameters),
// then the query arguments. The error says which field failed.
func (c *call) build(ctx *fasthttp.RequestCtx, r *core.Request, vars []string) error {
	b := c.b
	body := ctx.Request.Body()
	readBody := b.body != bodyNone
	if b.bodyByMethod {
		switch string(ctx.Method()) {
		case fasthttp.MethodPost, fasthttp.MethodPut, fasthttp.MethodPatch:
			readBody = true
		}
	}
	if readBody && len(bytes.TrimSpace(body)) > 0 {
		target := c.req.ProtoReflect()
		if b.body == bodyField {
			target = mutablePath(c.req, b.bodyPath)
		}
		if err := unmarshalJSON.Unmarshal(body, target.Interface()); err != nil {
			return fmt.Errorf("request body: %s", protoErr(err))
		}
	}
	for i, f := range b.vars {
		if err := setField(c.req, f, vars[i]); err != nil {
			return err
		}
	}
	for i, p := range c.t.spec.params {
		if err := setField(c.req, p.field, string(r.ParamAt(c.t.paramIdx[i]))); err != nil {
			return err
		}
	}
	if b.body == bodyAll {
		return nil // every field is the body's
	}
	var err error
	ctx.QueryArgs().VisitAll(func(k, v []byte) {
		if err != nil {
			return
		}
		f, ferr := fieldPath(b.m.in, strings.Split(string(k), "."))
		if ferr != nil || settable(f) != nil {
			return // not a field: ignored, as grpc-gateway does
		}
		err = setField(c.req, f, string(v))
	})
	return err
}

// mutablePath returns the message at the field path f of m, creating the
// messages on the way.
func mutablePath(m *dynamicpb.Message, f []protoreflect.FieldDescriptor) protoreflect.Message {
	msg := protoreflect.Message(m)
	for _, fd := range f {
		msg = msg.Mutable(fd).Message()
	}
	return msg
}

// setField sets the field path f of m from the text s: a repeated field
// gets s appended.
func setField(m *dynamicpb.Message, f []protoreflect.FieldDescriptor, s string) error {
	msg := mutablePath(m, f[:len(f)-1])
	fd := f[len(f)-1]
	v, err := parseValue(msg, fd, s)
	if err != nil {
		return fmt.Errorf("field %s: %w", joinNames(f), err)
	}
	if fd.IsList() {
		msg.Mutable(fd).List().Append(v)
		return nil
	}
	msg.Set(fd, v)
	return nil
}

func joinNames(f []protoreflect.FieldDescriptor) string {
	names := make([]string, len(f))
	for i, fd := range f {
		names[i] = string(fd.Name())
	}
	return strings.Join(names, ".")
}

// parseValue parses s as a value of field fd of msg.
func parseValue(msg protoreflect.Message, fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	bad := func(what string) (protoreflect.Value, error) {
		return protoreflect.Value{}, fmt.Errorf("%q is not %s", s, what)
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return bad("a bool (true or false)")
		}
		return protoreflect.ValueOfBool(v), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return bad("a 32-bit integer")
		}
		return protoreflect.ValueOfInt32(int32(v)), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return bad("a 64-bit integer")
		}
		return protoreflect.ValueOfInt64(v), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return bad("an unsigned 32-bit integer")
		}
		return protoreflect.ValueOfUint32(uint32(v)), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return bad("an unsigned 64-bit integer")
		}
		return protoreflect.ValueOfUint64(v), nil
	case protoreflect.FloatKind:
		v, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return bad("a number")
		}
		return protoreflect.ValueOfFloat32(float32(v)), nil
	case protoreflect.DoubleKind:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return bad("a number")
		}
		return protoreflect.ValueOfFloat64(v), nil
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BytesKind:
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if v, err := enc.DecodeString(s); err == nil {
				return protoreflect.ValueOfBytes(v), nil
			}
		}
		return bad("base64")
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		if n, err := strconv.ParseInt(s, 10, 32); err == nil {
			return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
		}
		return bad("a value of enum " + string(fd.Enum().FullName()))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		// Well-known types with a JSON scalar form: a JSON string
		// ("2024-01-02T03:04:05Z", "1.5s"), or the text as JSON (a
		// number or bool of a wrapper).
		var m protoreflect.Message
		if fd.IsList() {
			m = msg.Mutable(fd).List().NewElement().Message()
		} else {
			m = msg.NewField(fd).Message()
		}
		q, _ := json.Marshal(s)
		if err := unmarshalJSON.Unmarshal(q, m.Interface()); err != nil {
			if err2 := unmarshalJSON.Unmarshal([]byte(s), m.Interface()); err2 != nil {
				return bad("a " + string(fd.Message().FullName()) + ": " + protoErr(err))
			}
		}
		return protoreflect.ValueOfMessage(m), nil
	}
	return bad("settable from text")
}

// marshalResponse returns the response as JSON: the whole message, or its
// response_body field.
func (c *call) marshalResponse() ([]byte, error) {
	if c.b.respPath == nil {
		return marshalJSON.Marshal(c.resp)
	}
	// The field's value, as it appears in its parent's JSON.
	f := c.b.respPath
	parent := protoreflect.Message(c.resp)
	for _, fd := range f[:len(f)-1] {
		parent = parent.Get(fd).Message()
	}
	fd := f[len(f)-1]
	one := dynamicpb.NewMessage(parent.Descriptor())
	if parent.Has(fd) {
		one.Set(fd, parent.Get(fd))
	}
	whole, err := marshalJSON.Marshal(one)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(whole, &obj); err != nil {
		return nil, err
	}
	if v, ok := obj[string(fd.Name())]; ok {
		return v, nil
	}
	// Unset: its JSON zero.
	switch {
	case fd.IsList():
		return []byte("[]"), nil
	case fd.IsMap() || fd.Message() != nil:
		return []byte("{}"), nil
	}
	all, err := (protojsonEmitAll).Marshal(one)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(all, &obj); err != nil {
		return nil, err
	}
	return obj[string(fd.Name())], nil
}

// protoErr returns the text of a protobuf error without its "proto:"
// prefix (whose space the library varies between runs).
func protoErr(err error) string {
	s, ok := strings.CutPrefix(err.Error(), "proto:")
	if !ok {
		return s
	}
	return strings.TrimLeft(s, " \u00a0")
}
