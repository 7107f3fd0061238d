package stub

import (
	"bufio"
	"encoding/json"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serveDemoRequest runs method uri with raw header lines through s and
// returns status, Content-Type and body.
func serveDemoRequest(t *testing.T, s *Server, method, uri, headers string) (int, string, string) {
	t.Helper()
	ctx := newCtx(t, method+" "+uri+" HTTP/1.1\r\nHost: demo\r\n"+headers+"\r\n")
	s.Handler(ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Header.ContentType()), string(ctx.Response.Body())
}

func TestDemo(t *testing.T) {
	servers := map[string]*Server{}
	for _, d := range []string{DemoUsers, DemoOrders, DemoProducts} {
		servers[d] = New(Options{Name: d + "-1", Demo: d})
	}
	f := func(demo, method, uri string, wantStatus int, wantBody string) {
		t.Helper()
		status, ct, body := serveDemoRequest(t, servers[demo], method, uri, "")
		if status != wantStatus || body != wantBody {
			t.Fatalf("%s %s %s: got %d %s; want %d %s", demo, method, uri, status, body, wantStatus, wantBody)
		}
		if ct != "application/json" {
			t.Fatalf("%s %s %s: got Content-Type %q; want application/json", demo, method, uri, ct)
		}
	}

	f(DemoUsers, "GET", "/users", 200, jsonOf(t, DemoUserList()))
	f(DemoUsers, "GET", "/users/1", 200, `{"id":1,"name":"Ada Lovelace","email":"ada@example.com"}`)
	f(DemoUsers, "GET", "/users/5", 200, `{"id":5,"name":"Barbara Liskov","email":"barbara@example.com"}`)
	f(DemoUsers, "GET", "/users/9", 404, `{"error":"user 9 not found"}`)
	f(DemoUsers, "GET", "/users/abc", 404, `{"error":"user abc not found"}`)
	f(DemoUsers, "GET", "/users/", 404, `{"error":"no route for /users/"}`)
	f(DemoUsers, "GET", "/usersx", 404, `{"error":"no route for /usersx"}`)
	f(DemoUsers, "GET", "/orders", 404, `{"error":"no route for /orders"}`)
	f(DemoUsers, "GET", "/healthz", 200, `{"status":"ok","name":"users-1"}`)
	f(DemoUsers, "POST", "/users", 405, `{"error":"method not allowed: POST; allowed: GET, HEAD"}`)
	f(DemoUsers, "DELETE", "/users/1", 405, `{"error":"method not allowed: DELETE; allowed: GET, HEAD"}`)
	f(DemoUsers, "POST", "/nope", 404, `{"error":"no route for /nope"}`)
	// fasthttp leaves the body of a HEAD response out when writing it
	f(DemoUsers, "HEAD", "/users/1", 200, `{"id":1,"name":"Ada Lovelace","email":"ada@example.com"}`)

	f(DemoOrders, "GET", "/orders", 200, jsonOf(t, DemoOrderList()))
	f(DemoOrders, "GET", "/orders/3", 200, `{"id":3,"user_id":2,"sku":"sku-1002","quantity":1,"total_cents":12999}`)
	f(DemoOrders, "GET", "/orders/9", 404, `{"error":"order 9 not found"}`)
	f(DemoOrders, "GET", "/orders?user=1", 200, jsonOf(t, []Order{
		{1, 1, "sku-1001", 1, 4999},
		{2, 1, "sku-1003", 2, 5998},
		{8, 1, "sku-1005", 5, 4995},
	}))
	f(DemoOrders, "GET", "/orders?user=4", 200, `[{"id":7,"user_id":4,"sku":"sku-1003","quantity":1,"total_cents":2999}]`)
	f(DemoOrders, "GET", "/orders?user=5", 200, `[]`)
	f(DemoOrders, "GET", "/orders?user=99", 200, `[]`)
	f(DemoOrders, "GET", "/orders?user=x", 400, `{"error":"invalid user filter x: want an integer id"}`)
	f(DemoOrders, "GET", "/orders?other=1", 200, jsonOf(t, DemoOrderList()))
	f(DemoOrders, "GET", "/healthz", 200, `{"status":"ok","name":"orders-1"}`)
	f(DemoOrders, "PUT", "/orders/1", 405, `{"error":"method not allowed: PUT; allowed: GET, HEAD"}`)

	f(DemoProducts, "GET", "/products", 200, jsonOf(t, DemoProductList()))
	f(DemoProducts, "GET", "/products/sku-1002", 200, `{"sku":"sku-1002","name":"Ultrawide monitor","price_cents":12999}`)
	f(DemoProducts, "GET", "/products/sku-9999", 404, `{"error":"product sku-9999 not found"}`)
	f(DemoProducts, "GET", "/products/1002", 404, `{"error":"product 1002 not found"}`)
	f(DemoProducts, "GET", "/healthz", 200, `{"status":"ok","name":"products-1"}`)
}

func TestDemoHead(t *testing.T) {
	r := startStub(t, Options{Demo: DemoUsers})
	c := dial(t, r.Addr())
	send(t, c, "HEAD /users/1 HTTP/1.1\r\nHost: demo\r\n\r\nGET /healthz HTTP/1.1\r\nHost: demo\r\n\r\n")
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h fasthttp.ResponseHeader
	if err := h.Read(br); err != nil {
		t.Fatalf("cannot read HEAD response: %s", err)
	}
	if got := h.StatusCode(); got != 200 {
		t.Fatalf("got status %d; want 200", got)
	}
	// no body: the next bytes are the pipelined GET's response
	resp := readResponse(t, c, br)
	if got, want := string(resp.Body()), `{"status":"ok","name":"stub"}`; got != want {
		t.Fatalf("got the next response body %q; want %q", got, want)
	}
}

func TestDemoAllow(t *testing.T) {
	s := New(Options{Demo: DemoUsers})
	ctx := newCtx(t, "POST /users HTTP/1.1\r\nHost: demo\r\nContent-Length: 2\r\n\r\n{}")
	s.Handler(ctx)
	if got := string(ctx.Response.Header.Peek("Allow")); got != "GET, HEAD" {
		t.Fatalf("got Allow %q; want %q", got, "GET, HEAD")
	}
}

func TestDemoData(t *testing.T) {
	users := DemoUserList()
	orders := DemoOrderList()
	products := DemoProductList()
	if len(users) != 5 || len(orders) != 8 || len(products) != 5 {
		t.Fatalf("got %d users, %d orders, %d products; want 5, 8, 5", len(users), len(orders), len(products))
	}
	for _, o := range orders {
		if !hasUser(users, o.UserID) {
			t.Fatalf("order %d: got user %d; want an existing user", o.ID, o.UserID)
		}
		p, ok := findProduct(products, o.SKU)
		if !ok {
			t.Fatalf("order %d: got sku %q; want an existing product", o.ID, o.SKU)
		}
		if want := o.Quantity * p.PriceCents; o.TotalCents != want {
			t.Fatalf("order %d: got total %d; want %d", o.ID, o.TotalCents, want)
		}
	}
}

func hasUser(users []User, id int) bool {
	for _, u := range users {
		if u.ID == id {
			return true
		}
	}
	return false
}

func findProduct(products []Product, sku string) (Product, bool) {
	for _, p := range products {
		if p.SKU == sku {
			return p, true
		}
	}
	return Product{}, false
}

func TestDemoKnobs(t *testing.T) {
	s := New(Options{Name: "users-1", Demo: DemoUsers, Status: 500, Size: 7})
	f := func(uri, headers string, wantStatus int, wantCT, wantBody string) {
		t.Helper()
		status, ct, body := serveDemoRequest(t, s, "GET", uri, headers)
		if status != wantStatus || ct != wantCT || body != wantBody {
			t.Fatalf("GET %s %q: got %d %q %s; want %d %q %s", uri, headers, status, ct, body, wantStatus, wantCT, wantBody)
		}
	}
	user1 := `{"id":1,"name":"Ada Lovelace","email":"ada@example.com"}`
	// Options.Status and Options.Size are for non-demo responses only
	f("/users/1", "", 200, "application/json", user1)
	f("/users/1?stub_status=503", "", 503, "application/json", user1)
	f("/users/9", "X-Stub-Status: 200\r\n", 200, "application/json", `{"error":"user 9 not found"}`)
	f("/users/1?stub_size=5", "", 500, "text/plain; charset=utf-8", "ok fa")
	f("/users/1?stub_size=5&stub_status=201", "", 201, "text/plain; charset=utf-8", "ok fa")
	f("/users/1?stub_chunked=1", "", 200, "application/json", user1)
}

// jsonOf encodes v.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("cannot encode %v: %s", v, err)
	}
	return string(b)
}
