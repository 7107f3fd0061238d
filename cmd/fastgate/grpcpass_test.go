package main

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestGRPCPassthrough: a gRPC client talking h2c to the binary reaches a
// grpc-go server through a route with protocol: grpc: a unary call, its
// error status (a trailer), and a server stream whose messages arrive as
// the server sends them.
func TestGRPCPassthrough(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("inventory", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(ln) //nolint:errcheck
	defer srv.Stop()

	g := startGateway(t, `
server: {h2c: true}
upstreams:
  grpc: {targets: [{url: "http://`+ln.Addr().String()+`"}]}
routes:
  - {name: health, match: {path: "/grpc.health.v1.Health/{m}"}, upstream: grpc, protocol: grpc, timeout: 10s}
`)
	conn, err := grpc.NewClient(g.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	if r, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "inventory"}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check: %v, %v; want SERVING", r, err)
	}
	if _, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service: %v; want NotFound (grpc-status in the trailers)", err)
	}
	w, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "inventory"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch, first: %v, %v; want SERVING", r, err)
	}
	hs.SetServingStatus("inventory", healthpb.HealthCheckResponse_NOT_SERVING)
	if r, err := w.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch, after the change: %v, %v; want NOT_SERVING streamed", r, err)
	}
}
