package grpc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"fastgate/core"
	"fastgate/core/coretest"
	fgrpc "fastgate/core/grpc"
)

const benchBody = `{"i32":-1,"i64":"-2","s":"hello","b":true,"db":2.25,"inner":{"name":"a","n":1},` +
	`"inners":[{"name":"b"},{"n":2}],"color":"GREEN","counts":{"x":1},"ts":"2024-01-02T03:04:05Z","tags":["x","y"]}`

// BenchmarkTranscodeCall is one POST through the gateway: JSON to a
// dynamic message, the unary call to an in-process grpc-go server over
// loopback h2c, and the answer back to JSON.
func BenchmarkTranscodeCall(b *testing.B) {
	srv := startServer(b)
	cfg := strings.NewReplacer("ADDR", srv.addr, "CLOSED", closedAddr(b)).Replace(terminalConfig)
	bld := &fgrpc.Builder{}
	gw := coretest.Start(b, cfg, core.Options{Terminals: []core.TerminalBuilder{bld}}, nil)
	b.Cleanup(func() { gw.Stop(); bld.Close() })
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for pb.Next() {
			req.Reset()
			req.Header.SetMethod("POST")
			req.SetRequestURI("http://gw.local/all")
			req.SetBodyString(benchBody)
			if err := gw.Client.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != 200 {
				b.Fatalf("POST /all: %v %d %s", err, resp.StatusCode(), resp.Body())
			}
		}
	})
}

// BenchmarkTranscodeOnly is the transcoding alone, no network: JSON to a
// dynamic message to the wire, and the wire to a dynamic message to JSON.
func BenchmarkTranscodeOnly(b *testing.B) {
	md := testProto(b).Messages().ByName(protoreflect.Name("All"))
	body := []byte(benchBody)
	mo := protojson.MarshalOptions{UseProtoNames: true}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	var sink int
	for b.Loop() {
		in := dynamicpb.NewMessage(md)
		if err := protojson.Unmarshal(body, in); err != nil {
			b.Fatal(err)
		}
		wire, err := proto.Marshal(in)
		if err != nil {
			b.Fatal(err)
		}
		out := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(wire, out); err != nil {
			b.Fatal(err)
		}
		js, err := mo.Marshal(out)
		if err != nil {
			b.Fatal(err)
		}
		sink += len(js)
	}
	_ = sink
}
