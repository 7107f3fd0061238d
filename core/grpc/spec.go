package grpc

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"fastgate/core/config"
)

// method is one callable unary method and its HTTP bindings. Immutable.
type method struct {
	// path is the gRPC method path, "/package.Service/Method".
	path     string
	in, out  protoreflect.MessageDescriptor
	bindings []*binding
}

// binding is one HTTP mapping of a method: an annotation's (or
// additional binding's), or the route's own for a method route without
// an annotation.
type binding struct {
	m *method
	// verb is the HTTP method; "" for a method route's binding (the route
	// decides methods).
	verb string
	tmpl *template                        // nil: the route's path parameters
	vars [][]protoreflect.FieldDescriptor // the template's variables' fields
	// body: bodyNone, bodyAll ("*") or bodyField (the field bodyPath).
	body     byte
	bodyPath []protoreflect.FieldDescriptor
	// bodyByMethod: no annotation; the body is read for POST, PUT, PATCH.
	bodyByMethod bool
	respPath     []protoreflect.FieldDescriptor // response_body; nil: all
}

const (
	bodyNone = iota
	bodyAll
	bodyField
)

// spec is what the route's grpc config resolves to against its proto.
type spec struct {
	methods  []*method
	bindings []*binding // service routes: every binding, in method order
	// params are the route's path parameters and the request fields they
	// set (method routes).
	params []param
}

type param struct {
	name  string
	field []protoreflect.FieldDescriptor
}

// resolve loads g's descriptors and resolves its method or service; the
// route has path parameters routeParams. Errors name the config field
// they are about ("grpc.method: ...").
func resolve(g *config.GRPC, routeParams []string) (*spec, error) {
	files, err := load(g)
	if err != nil {
		return nil, err
	}
	if g.Method != "" {
		return resolveMethod(files, g.Method, routeParams)
	}
	return resolveService(files, g.Service)
}

// load compiles the proto or reads the descriptor set.
func load(g *config.GRPC) (*protoregistry.Files, error) {
	if g.DescriptorSet != "" {
		files, err := loadDescriptorSet(g.DescriptorSet)
		if err != nil {
			return nil, fmt.Errorf("grpc.descriptor_set: %w", err)
		}
		return files, nil
	}
	fd, err := compileFile(g.Proto, g.ImportPaths)
	if err != nil {
		return nil, fmt.Errorf("grpc.proto: %w", err)
	}
	files := new(protoregistry.Files)
	register(files, fd)
	return files, nil
}

// register adds fd and its imports to files.
func register(files *protoregistry.Files, fd protoreflect.FileDescriptor) {
	if _, err := files.FindFileByPath(fd.Path()); err == nil {
		return
	}
	imps := fd.Imports()
	for i := 0; i < imps.Len(); i++ {
		register(files, imps.Get(i).FileDescriptor)
	}
	files.RegisterFile(fd) //nolint:errcheck // a conflict leaves the first
}

// findService returns service name of files, or an error listing the
// known services.
func findService(files *protoregistry.Files, name string) (protoreflect.ServiceDescriptor, error) {
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if sd, ok := d.(protoreflect.ServiceDescriptor); err == nil && ok {
		return sd, nil
	}
	var known []string
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			known = append(known, string(fd.Services().Get(i).FullName()))
		}
		return true
	})
	slices.Sort(known)
	return nil, fmt.Errorf("unknown service %q; the proto defines: %s", name, listOrNone(known))
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// resolveMethod resolves "package.Service/Method" for a method route.
func resolveMethod(files *protoregistry.Files, name string, routeParams []string) (*spec, error) {
	svc, mname, _ := strings.Cut(name, "/")
	sd, err := findService(files, svc)
	if err != nil {
		return nil, fmt.Errorf("grpc.method: %w", err)
	}
	md := sd.Methods().ByName(protoreflect.Name(mname))
	if md == nil {
		var known []string
		for i := 0; i < sd.Methods().Len(); i++ {
			known = append(known, svc+"/"+string(sd.Methods().Get(i).Name()))
		}
		return nil, fmt.Errorf("grpc.method: unknown method %q; service %s has: %s", name, svc, listOrNone(known))
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, fmt.Errorf("grpc.method: %s is a streaming method; only unary methods are supported", name)
	}
	m := newMethod(md)
	rule, err := httpRuleOf(md)
	if err != nil {
		return nil, fmt.Errorf("grpc.method: %w", err)
	}
	b := &binding{m: m, bodyByMethod: rule == nil}
	if rule != nil {
		// The route's match decides path and methods; the annotation
		// gives the body and response mapping.
		if err := b.mapBodies(rule); err != nil {
			return nil, fmt.Errorf("grpc.method: %s: %w", name, err)
		}
	}
	m.bindings = []*binding{b}
	s := &spec{methods: []*method{m}, bindings: m.bindings}
	for _, p := range routeParams {
		f, err := fieldPath(m.in, strings.Split(p, "."))
		if err != nil {
			return nil, fmt.Errorf("grpc.method: path parameter {%s}: %w", p, err)
		}
		if err := settable(f); err != nil {
			return nil, fmt.Errorf("grpc.method: path parameter {%s}: %w", p, err)
		}
		s.params = append(s.params, param{name: p, field: f})
	}
	return s, nil
}

// resolveService resolves a service route: every method with a
// google.api.http annotation.
func resolveService(files *protoregistry.Files, name string) (*spec, error) {
	sd, err := findService(files, name)
	if err != nil {
		return nil, fmt.Errorf("grpc.service: %w", err)
	}
	s := &spec{}
	for i := 0; i < sd.Methods().Len(); i++ {
		md := sd.Methods().Get(i)
		rule, err := httpRuleOf(md)
		if err != nil {
			return nil, fmt.Errorf("grpc.service: %w", err)
		}
		if rule == nil {
			continue
		}
		if md.IsStreamingClient() || md.IsStreamingServer() {
			return nil, fmt.Errorf("grpc.service: %s is a streaming method with a google.api.http annotation; only unary methods are supported", md.FullName())
		}
		m := newMethod(md)
		if err := m.addBindings(rule, true); err != nil {
			return nil, fmt.Errorf("grpc.service: method %s: %w", md.Name(), err)
		}
		s.methods = append(s.methods, m)
		s.bindings = append(s.bindings, m.bindings...)
	}
	if len(s.methods) == 0 {
		return nil, fmt.Errorf("grpc.service: no method of %s has a google.api.http annotation; annotate them or use method", name)
	}
	return s, nil
}

func newMethod(md protoreflect.MethodDescriptor) *method {
	return &method{
		path: "/" + string(md.Parent().FullName()) + "/" + string(md.Name()),
		in:   md.Input(),
		out:  md.Output(),
	}
}

// addBindings adds the bindings of rule and, at the top, its
// additional_bindings.
func (m *method) addBindings(rule protoreflect.Message, top bool) error {
	fields := rule.Descriptor().Fields()
	b := &binding{m: m}
	var tmpl string
	for _, v := range []string{"get", "put", "post", "delete", "patch"} {
		if f := fields.ByName(protoreflect.Name(v)); rule.Has(f) {
			b.verb, tmpl = strings.ToUpper(v), rule.Get(f).String()
		}
	}
	if f := fields.ByName("custom"); rule.Has(f) {
		c := rule.Get(f).Message()
		cf := c.Descriptor().Fields()
		b.verb, tmpl = c.Get(cf.ByName("kind")).String(), c.Get(cf.ByName("path")).String()
	}
	if b.verb == "" {
		return fmt.Errorf("the google.api.http annotation sets no method and path (get, post, put, patch, delete or custom)")
	}
	t, err := parseTemplate(tmpl)
	if err != nil {
		return err
	}
	b.tmpl = t
	for _, v := range t.vars {
		f, err := fieldPath(m.in, v.field)
		if err != nil {
			return fmt.Errorf("path template %q: {%s}: %w", tmpl, strings.Join(v.field, "."), err)
		}
		if err := settable(f); err != nil {
			return fmt.Errorf("path template %q: {%s}: %w", tmpl, strings.Join(v.field, "."), err)
		}
		b.vars = append(b.vars, f)
	}
	if err := b.mapBodies(rule); err != nil {
		return err
	}
	m.bindings = append(m.bindings, b)
	if top {
		list := rule.Get(fields.ByName("additional_bindings")).List()
		for i := 0; i < list.Len(); i++ {
			if err := m.addBindings(list.Get(i).Message(), false); err != nil {
				return fmt.Errorf("additional_bindings[%d]: %w", i, err)
			}
		}
	}
	return nil
}

// mapBodies sets b's body and response_body from rule.
func (b *binding) mapBodies(rule protoreflect.Message) error {
	fields := rule.Descriptor().Fields()
	switch body := rule.Get(fields.ByName("body")).String(); body {
	case "":
	case "*":
		b.body = bodyAll
	default:
		f, err := fieldPath(b.m.in, strings.Split(body, "."))
		if err != nil {
			return fmt.Errorf("body %q: %w", body, err)
		}
		last := f[len(f)-1]
		if last.Message() == nil || last.IsList() || last.IsMap() {
			return fmt.Errorf("body %q: only a singular message field is supported as the body", body)
		}
		b.body, b.bodyPath = bodyField, f
	}
	if rb := rule.Get(fields.ByName("response_body")).String(); rb != "" {
		f, err := fieldPath(b.m.out, strings.Split(rb, "."))
		if err != nil {
			return fmt.Errorf("response_body %q: %w", rb, err)
		}
		b.respPath = f
	}
	return nil
}

// fieldPath resolves the dotted field path names in md (proto or JSON
// names).
func fieldPath(md protoreflect.MessageDescriptor, names []string) ([]protoreflect.FieldDescriptor, error) {
	var out []protoreflect.FieldDescriptor
	for i, n := range names {
		if md == nil {
			return nil, fmt.Errorf("%s is not a message field", strings.Join(names[:i], "."))
		}
		f := md.Fields().ByName(protoreflect.Name(n))
		if f == nil {
			f = md.Fields().ByJSONName(n)
		}
		if f == nil {
			var known []string
			for j := 0; j < md.Fields().Len(); j++ {
				known = append(known, string(md.Fields().Get(j).Name()))
			}
			return nil, fmt.Errorf("names no field of %s; its fields: %s", md.FullName(), listOrNone(known))
		}
		out = append(out, f)
		if i < len(names)-1 {
			if f.IsList() || f.IsMap() {
				return nil, fmt.Errorf("%s is repeated; a path goes through singular messages only", f.Name())
			}
			md = f.Message()
		}
	}
	return out, nil
}

// settable checks that a path or query value can set the field path's
// last field: a scalar, enum or well-known message, not a map.
func settable(f []protoreflect.FieldDescriptor) error {
	last := f[len(f)-1]
	if last.IsMap() {
		return fmt.Errorf("%s is a map; a path parameter cannot set it", last.Name())
	}
	if md := last.Message(); md != nil && !wellKnownScalar(md.FullName()) {
		return fmt.Errorf("%s is a message (%s); a path parameter sets a scalar, enum or well-known type field", last.Name(), md.FullName())
	}
	return nil
}

// wellKnownScalar reports whether messages of type name have a JSON
// string or number form (Timestamp, Duration, wrappers, FieldMask).
func wellKnownScalar(name protoreflect.FullName) bool {
	switch name {
	case "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
		"google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
		"google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		return true
	}
	return false
}
