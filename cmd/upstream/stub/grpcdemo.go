package stub

import (
	"context"
	"fastgate/examples"
	"net"
	"strconv"
	"sync"
	"time"

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

// StartGRPCInventory serves the demo inventory service (examples.InventoryProto)
// over h2c gRPC on addr ("127.0.0.1:0" for any port): GetStock, ListStock
// and Reserve over the demo products (DemoProductList), each with some
// stock; every answer carries the header metadata x-stock-source: stub.
// stop stops the server at once; boundAddr is the address it listens on.
func StartGRPCInventory(addr string) (stop func(), boundAddr string, err error) {
	fd, err := fgrpc.CompileSource("inventory.proto", examples.InventoryProto)
	if err != nil {
		return nil, "", err
	}
	inv := newInventory(fd)
	srv := grpc.NewServer()
	sd := fd.Services().ByName("Inventory")
	desc := grpc.ServiceDesc{ServiceName: string(sd.FullName()), HandlerType: (*any)(nil)}
	for name, h := range map[string]func(context.Context, protoreflect.Message) (proto.Message, error){
		"GetStock":  inv.getStock,
		"ListStock": inv.listStock,
		"Reserve":   inv.reserve,
	} {
		in := sd.Methods().ByName(protoreflect.Name(name)).Input()
		desc.Methods = append(desc.Methods, grpc.MethodDesc{
			MethodName: name,
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				m := dynamicpb.NewMessage(in)
				if err := dec(m); err != nil {
					return nil, err
				}
				grpc.SetHeader(ctx, metadata.Pairs("x-stock-source", "stub")) //nolint:errcheck // best effort
				return h(ctx, m)
			},
		})
	}
	srv.RegisterService(&desc, struct{}{})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Stop
	return srv.Stop, ln.Addr().String(), nil
}

// inventory is the demo service's state: stock by SKU. It is safe for
// concurrent use.
type inventory struct {
	fd      protoreflect.FileDescriptor
	updated time.Time

	mu           sync.Mutex
	stock        map[string]int32
	reservations int
}

func newInventory(fd protoreflect.FileDescriptor) *inventory {
	inv := &inventory{fd: fd, stock: map[string]int32{}, updated: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for i, p := range DemoProductList() {
		inv.stock[p.SKU] = int32(10 * i) // sku-1001 is out of stock
	}
	return inv
}

func (inv *inventory) msg(name string) *dynamicpb.Message {
	return dynamicpb.NewMessage(inv.fd.Messages().ByName(protoreflect.Name(name)))
}

func invSet(m protoreflect.Message, field string, v protoreflect.Value) {
	m.Set(m.Descriptor().Fields().ByName(protoreflect.Name(field)), v)
}

func invGet(m protoreflect.Message, field string) protoreflect.Value {
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(field)))
}

// stockOf returns the Stock message of sku, nil when unknown. inv.mu is
// held.
func (inv *inventory) stockOf(sku, warehouse string) *dynamicpb.Message {
	for _, p := range DemoProductList() {
		if p.SKU != sku {
			continue
		}
		if warehouse == "" {
			warehouse = "all"
		}
		s := inv.msg("Stock")
		invSet(s, "sku", protoreflect.ValueOfString(sku))
		invSet(s, "name", protoreflect.ValueOfString(p.Name))
		invSet(s, "available", protoreflect.ValueOfInt32(inv.stock[sku]))
		invSet(s, "warehouse", protoreflect.ValueOfString(warehouse))
		ts := dynamicpb.NewMessage(s.Descriptor().Fields().ByName("updated_at").Message())
		invSet(ts, "seconds", protoreflect.ValueOfInt64(inv.updated.Unix()))
		invSet(s, "updated_at", protoreflect.ValueOfMessage(ts))
		return s
	}
	return nil
}

func (inv *inventory) getStock(_ context.Context, in protoreflect.Message) (proto.Message, error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	sku := invGet(in, "sku").String()
	s := inv.stockOf(sku, invGet(in, "warehouse").String())
	if s == nil {
		return nil, status.Errorf(codes.NotFound, "no stock record for SKU %q", sku)
	}
	return s, nil
}

func (inv *inventory) listStock(_ context.Context, in protoreflect.Message) (proto.Message, error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	minAvail := int32(invGet(in, "min_available").Int())
	resp := inv.msg("ListStockResponse")
	items := resp.Mutable(resp.Descriptor().Fields().ByName("items")).List()
	for _, p := range DemoProductList() {
		if inv.stock[p.SKU] >= minAvail {
			items.Append(protoreflect.ValueOfMessage(inv.stockOf(p.SKU, "")))
		}
	}
	return resp, nil
}

func (inv *inventory) reserve(_ context.Context, in protoreflect.Message) (proto.Message, error) {
	sku, qty := invGet(in, "sku").String(), int32(invGet(in, "quantity").Int())
	if qty < 1 {
		st, _ := status.New(codes.InvalidArgument, "quantity must be at least 1").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "quantity", Description: "must be at least 1"}},
		})
		return nil, st.Err()
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	left, ok := inv.stock[sku]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no stock record for SKU %q", sku)
	}
	if qty > left {
		st, _ := status.New(codes.FailedPrecondition, "not enough stock").WithDetails(&errdetails.ErrorInfo{
			Reason:   "OUT_OF_STOCK",
			Domain:   "inventory.example.com",
			Metadata: map[string]string{"sku": sku, "available": strconv.Itoa(int(left))},
		})
		return nil, st.Err()
	}
	inv.stock[sku] = left - qty
	inv.reservations++
	r := inv.msg("Reservation")
	invSet(r, "id", protoreflect.ValueOfString("res-"+strconv.Itoa(inv.reservations)))
	invSet(r, "sku", protoreflect.ValueOfString(sku))
	invSet(r, "quantity", protoreflect.ValueOfInt32(qty))
	invSet(r, "remaining", protoreflect.ValueOfInt32(left-qty))
	return r, nil
}
