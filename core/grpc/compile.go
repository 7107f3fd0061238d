package grpc

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/reporter"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// googleAPI holds google/api/annotations.proto and google/api/http.proto,
// so that imports of them resolve without the googleapis tree.
//
//go:embed googleapi/google/api/*.proto
var googleAPI embed.FS

// embeddedAccessor opens the embedded google/api protos.
func embeddedAccessor(path string) (io.ReadCloser, error) {
	if !strings.HasPrefix(path, "google/api/") {
		return nil, fs.ErrNotExist
	}
	return googleAPI.Open("googleapi/" + path)
}

// resolver resolves imports in importPaths on disk, then the embedded
// google/api protos, then the well-known types.
func resolver(importPaths []string) protocompile.Resolver {
	return protocompile.WithStandardImports(protocompile.CompositeResolver{
		&protocompile.SourceResolver{ImportPaths: importPaths},
		&protocompile.SourceResolver{Accessor: embeddedAccessor},
	})
}

// compileFile compiles the proto at path (relative to the working
// directory), its imports resolved in importPaths (default: its
// directory). Errors carry the file and line of each problem.
func compileFile(path string, importPaths []string) (protoreflect.FileDescriptor, error) {
	if len(importPaths) == 0 {
		importPaths = []string{filepath.Dir(path)}
	}
	name, err := nameIn(path, importPaths)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("cannot read the proto: %w", err)
	}
	fd, err := compile(resolver(importPaths), name)
	if err != nil {
		// Name the file as the config does, not as the import path
		// resolves it.
		var parts []string
		for p := range strings.SplitSeq(err.Error(), "; ") {
			if rest, ok := strings.CutPrefix(p, name+":"); ok {
				p = path + ":" + rest
			}
			parts = append(parts, p)
		}
		return nil, errors.New(strings.Join(parts, "; "))
	}
	return fd, nil
}

// nameIn returns path's name relative to the first of importPaths that
// holds it, as imports name files.
func nameIn(path string, importPaths []string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for _, ip := range importPaths {
		dir, err := filepath.Abs(ip)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(dir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return filepath.ToSlash(rel), nil
		}
	}
	return "", fmt.Errorf("%q is in none of the import paths %q; add its directory to import_paths", path, importPaths)
}

// CompileSource compiles the proto source named name held in memory, its
// imports resolved among the well-known types and google/api annotations
// (and nothing on disk). It is for servers and tests that build their
// descriptors from a proto text (no generated code).
func CompileSource(name, source string) (protoreflect.FileDescriptor, error) {
	r := protocompile.WithStandardImports(protocompile.CompositeResolver{
		&protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(map[string]string{name: source})},
		&protocompile.SourceResolver{Accessor: embeddedAccessor},
	})
	return compile(r, name)
}

// compile compiles file name with r, every error reported (file:line:col:
// message, one per line).
func compile(r protocompile.Resolver, name string) (protoreflect.FileDescriptor, error) {
	var errs []string
	c := protocompile.Compiler{
		Resolver:       r,
		SourceInfoMode: protocompile.SourceInfoNone,
		Reporter: reporter.NewReporter(func(err reporter.ErrorWithPos) error {
			errs = append(errs, err.Error())
			return nil
		}, nil),
	}
	files, err := c.Compile(context.Background(), name)
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "; "))
	}
	if err != nil {
		return nil, err
	}
	return files[0], nil
}

// loadDescriptorSet reads a binary FileDescriptorSet and returns its
// files; the well-known types and google/api protos it lacks are taken
// from the gateway's own.
func loadDescriptorSet(path string) (*protoregistry.Files, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the descriptor set: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s is not a FileDescriptorSet (write one with protoc --include_imports -o FILE): %w", path, err)
	}
	have := map[string]bool{}
	for _, f := range set.File {
		have[f.GetName()] = true
	}
	// Add what the set imports but lacks (protoc -o without
	// --include_imports leaves out imports).
	for _, f := range set.File {
		for _, dep := range f.Dependency {
			if have[dep] {
				continue
			}
			fd, err := compile(resolver(nil), dep)
			if err != nil {
				return nil, fmt.Errorf("%s imports %q, which it does not hold: write it with protoc --include_imports", path, dep)
			}
			addWithDeps(&set, fd, have)
		}
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return files, nil
}

// addWithDeps adds fd and its imports missing from have to set, imports
// first.
func addWithDeps(set *descriptorpb.FileDescriptorSet, fd protoreflect.FileDescriptor, have map[string]bool) {
	if have[fd.Path()] {
		return
	}
	imps := fd.Imports()
	for i := 0; i < imps.Len(); i++ {
		addWithDeps(set, imps.Get(i).FileDescriptor, have)
	}
	have[fd.Path()] = true
	set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
}

// httpRuleType is google.api.HttpRule compiled from the embedded proto.
var httpRuleType = sync.OnceValues(func() (protoreflect.MessageDescriptor, error) {
	fd, err := compile(protocompile.WithStandardImports(&protocompile.SourceResolver{Accessor: embeddedAccessor}), "google/api/http.proto")
	if err != nil {
		return nil, err
	}
	return fd.Messages().ByName("HttpRule"), nil
})

// httpExtField is the field number of the google.api.http method option.
const httpExtField = 72295728

// httpRuleOf returns method md's google.api.http annotation as a
// google.api.HttpRule message, or nil when it has none. The option is
// read from the wire form of the method's options, whatever registry
// (compiled, descriptor set) made them.
func httpRuleOf(md protoreflect.MethodDescriptor) (protoreflect.Message, error) {
	opts := md.Options()
	if opts == nil || !opts.ProtoReflect().IsValid() {
		return nil, nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(opts)
	if err != nil {
		return nil, err
	}
	var raw []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		if num == httpExtField && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			raw = append(raw, v...) // repeated occurrences merge
		}
		b = b[m:]
	}
	if raw == nil {
		return nil, nil
	}
	rd, err := httpRuleType()
	if err != nil {
		return nil, err
	}
	rule := dynamicpb.NewMessage(rd)
	if err := proto.Unmarshal(raw, rule); err != nil {
		return nil, fmt.Errorf("google.api.http option of %s: %w", md.FullName(), err)
	}
	return rule, nil
}
