package grpc_test

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	fgrpc "fastgate/core/grpc"
)

// handler serves one method with dynamic messages.
type handler func(ctx context.Context, in *dynamicpb.Message) (proto.Message, error)

// testServer is a grpc-go server of testdata/test.proto on a loopback
// port, its methods implemented over dynamic messages.
type testServer struct {
	addr  string
	calls atomic.Int64
	fd    protoreflect.FileDescriptor
	// sleeping is closed (once) when a Sleep call has started.
	sleeping  chan struct{}
	sleepOnce sync.Once
}

// testProto compiles testdata/test.proto as the server sees it.
func testProto(t testing.TB) protoreflect.FileDescriptor {
	t.Helper()
	src, err := os.ReadFile("testdata/test.proto")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := fgrpc.CompileSource("test.proto", string(src))
	if err != nil {
		t.Fatalf("compile testdata/test.proto: %s", err)
	}
	return fd
}

func startServer(t testing.TB) *testServer {
	t.Helper()
	s := &testServer{fd: testProto(t), sleeping: make(chan struct{})}
	srv := grpc.NewServer()
	register(srv, s.fd.Services().ByName("Echo"), map[string]handler{
		"Echo":  s.echo,
		"Fail":  s.fail,
		"Sleep": s.sleep,
	}, &s.calls)
	register(srv, s.fd.Services().ByName("Library"), map[string]handler{
		"GetBook":    s.getBook,
		"CreateBook": s.createBook,
		"ListBooks":  s.listBooks,
		"MoveBook":   s.moveBook,
	}, &s.calls)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(srv.Stop)
	return s
}

// register registers sd's unary methods with handlers.
func register(srv *grpc.Server, sd protoreflect.ServiceDescriptor, handlers map[string]handler, calls *atomic.Int64) {
	desc := grpc.ServiceDesc{ServiceName: string(sd.FullName()), HandlerType: (*any)(nil)}
	for name, h := range handlers {
		md := sd.Methods().ByName(protoreflect.Name(name))
		desc.Methods = append(desc.Methods, grpc.MethodDesc{
			MethodName: name,
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				calls.Add(1)
				in := dynamicpb.NewMessage(md.Input())
				if err := dec(in); err != nil {
					return nil, err
				}
				return h(ctx, in)
			},
		})
	}
	srv.RegisterService(&desc, struct{}{})
}

func (s *testServer) echo(ctx context.Context, in *dynamicpb.Message) (proto.Message, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if rid := md.Get("x-request-id"); len(rid) > 0 {
		grpc.SetHeader(ctx, metadata.Pairs("x-echo-rid", rid[0]))     //nolint:errcheck
		grpc.SetTrailer(ctx, metadata.Pairs("x-trail", "t-"+rid[0]))  //nolint:errcheck
		grpc.SetHeader(ctx, metadata.Pairs("x-hidden", "not listed")) //nolint:errcheck
	}
	if auth := md.Get("authorization"); len(auth) > 0 {
		grpc.SetHeader(ctx, metadata.Pairs("x-echo-auth", auth[0])) //nolint:errcheck
	}
	return in, nil
}

func (s *testServer) fail(_ context.Context, in *dynamicpb.Message) (proto.Message, error) {
	f := in.Descriptor().Fields()
	code := codes.Code(in.Get(f.ByName("i32")).Int())
	st := status.New(code, in.Get(f.ByName("s")).String())
	st, err := st.WithDetails(
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "sku", Description: "unknown sku"}}},
		&errdetails.ErrorInfo{Reason: "OUT_OF_STOCK", Domain: "inventory.example.com"},
	)
	if err != nil {
		return nil, err
	}
	return nil, st.Err()
}

func (s *testServer) sleep(ctx context.Context, _ *dynamicpb.Message) (proto.Message, error) {
	s.sleepOnce.Do(func() { close(s.sleeping) })
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// msg returns a new message of the test proto's type name.
func (s *testServer) msg(name string) *dynamicpb.Message {
	return dynamicpb.NewMessage(s.fd.Messages().ByName(protoreflect.Name(name)))
}

func setStr(m protoreflect.Message, field, v string) {
	m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(field)), protoreflect.ValueOfString(v))
}

func getStr(m protoreflect.Message, field string) string {
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(field))).String()
}

func (s *testServer) getBook(_ context.Context, in *dynamicpb.Message) (proto.Message, error) {
	name := getStr(in, "name")
	if strings.HasSuffix(name, "/books/missing") {
		return nil, status.Errorf(codes.NotFound, "book %s not found", name)
	}
	b := s.msg("Book")
	setStr(b, "name", name)
	setStr(b, "title", "Title of "+name+" ("+getStr(in, "view")+")")
	return b, nil
}

func (s *testServer) createBook(_ context.Context, in *dynamicpb.Message) (proto.Message, error) {
	f := in.Descriptor().Fields()
	b := in.Get(f.ByName("book")).Message()
	setStr(b, "name", getStr(in, "parent")+"/books/new")
	return b.Interface(), nil
}

func (s *testServer) listBooks(_ context.Context, in *dynamicpb.Message) (proto.Message, error) {
	resp := s.msg("ListBooksResponse")
	f := resp.Descriptor().Fields()
	list := resp.Mutable(f.ByName("books")).List()
	n := in.Get(in.Descriptor().Fields().ByName("page_size")).Int()
	for i := range n {
		b := s.msg("Book")
		setStr(b, "name", getStr(in, "parent")+"/books/"+string(rune('a'+i)))
		list.Append(protoreflect.ValueOfMessage(b))
	}
	setStr(resp, "next", "token")
	return resp, nil
}

func (s *testServer) moveBook(_ context.Context, in *dynamicpb.Message) (proto.Message, error) {
	return in.Get(in.Descriptor().Fields().ByName("book")).Message().Interface(), nil
}
