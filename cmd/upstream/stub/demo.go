package stub

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/valyala/fasthttp"
)

// Demo service names accepted by Options.Demo.
const (
	DemoUsers    = "users"
	DemoOrders   = "orders"
	DemoProducts = "products"
)

const (
	healthPath = "/healthz"
	allowDemo  = "GET, HEAD"
)

// User is a record of the users demo API.
type User struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Order is a record of the orders demo API.
type Order struct {
	ID         int    `json:"id"`
	UserID     int    `json:"user_id"`
	SKU        string `json:"sku"`
	Quantity   int    `json:"quantity"`
	TotalCents int    `json:"total_cents"`
}

// Product is a record of the products demo API.
type Product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int    `json:"price_cents"`
}

// DemoUserList returns the records the users demo API serves, a fresh copy.
func DemoUserList() []User {
	return []User{
		{1, "Ada Lovelace", "ada@example.com"},
		{2, "Alan Turing", "alan@example.com"},
		{3, "Grace Hopper", "grace@example.com"},
		{4, "Edsger Dijkstra", "edsger@example.com"},
		{5, "Barbara Liskov", "barbara@example.com"},
	}
}

// DemoOrderList returns the records the orders demo API serves, a fresh copy.
// User 5 has no orders.
func DemoOrderList() []Order {
	return []Order{
		{1, 1, "sku-1001", 1, 4999},
		{2, 1, "sku-1003", 2, 5998},
		{3, 2, "sku-1002", 1, 12999},
		{4, 2, "sku-1005", 3, 2997},
		{5, 3, "sku-1004", 1, 34999},
		{6, 3, "sku-1001", 2, 9998},
		{7, 4, "sku-1003", 1, 2999},
		{8, 1, "sku-1005", 5, 4995},
	}
}

// DemoProductList returns the records the products demo API serves, a fresh
// copy.
func DemoProductList() []Product {
	return []Product{
		{"sku-1001", "Mechanical keyboard", 4999},
		{"sku-1002", "Ultrawide monitor", 12999},
		{"sku-1003", "Wireless mouse", 2999},
		{"sku-1004", "Standing desk", 34999},
		{"sku-1005", "USB-C cable", 999},
	}
}

// route is a precomputed GET answer: the request key and its JSON body.
type route struct {
	key  string
	body []byte
}

// demoAPI is one demo service: a collection path, its items by key, and
// optionally list bodies filtered by a query argument. It is immutable.
type demoAPI struct {
	collection string  // "/users"
	noun       string  // "user", for 404 texts
	list       []byte  // GET collection body
	items      []route // GET collection/key bodies
	filterArg  string  // query argument filtering the list; "" for none
	filtered   []route // filterArg value -> filtered list body
}

// newDemoAPI returns the demo API named kind, or nil if kind names none.
func newDemoAPI(kind string) *demoAPI {
	switch kind {
	case DemoUsers:
		return buildAPI("/users", "user", DemoUserList(), func(u User) string { return strconv.Itoa(u.ID) })
	case DemoOrders:
		orders := DemoOrderList()
		d := buildAPI("/orders", "order", orders, func(o Order) string { return strconv.Itoa(o.ID) })
		d.filterArg = "user"
		d.filtered = ordersByUser(orders, DemoUserList())
		return d
	case DemoProducts:
		return buildAPI("/products", "product", DemoProductList(), func(p Product) string { return p.SKU })
	}
	return nil
}

// buildAPI precomputes the bodies of a collection and its items.
func buildAPI[T any](collection, noun string, items []T, key func(T) string) *demoAPI {
	d := &demoAPI{collection: collection, noun: noun, list: mustJSON(items)}
	for _, it := range items {
		d.items = append(d.items, route{key(it), mustJSON(it)})
	}
	return d
}

// ordersByUser precomputes the order list of every user, empty ones included.
func ordersByUser(orders []Order, users []User) []route {
	routes := make([]route, 0, len(users))
	for _, u := range users {
		mine := []Order{}
		for _, o := range orders {
			if o.UserID == u.ID {
				mine = append(mine, o)
			}
		}
		routes = append(routes, route{strconv.Itoa(u.ID), mustJSON(mine)})
	}
	return routes
}

// mustJSON encodes the fixed demo data, which cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("stub: BUG: cannot encode demo data: " + err.Error())
	}
	return b
}

// lookup returns the body routed by key, or nil.
func lookup(routes []route, key []byte) []byte {
	for i := range routes {
		if routes[i].key == string(key) {
			return routes[i].body
		}
	}
	return nil
}

// itemKey returns the key in path collection/key; ok is false for other
// paths.
func (d *demoAPI) itemKey(path []byte) (key []byte, ok bool) {
	n := len(d.collection)
	if len(path) <= n+1 || string(path[:n]) != d.collection || path[n] != '/' {
		return nil, false
	}
	return path[n+1:], true
}

// serveDemo answers a demo API request; the status knob, when given,
// overrides the status.
func (s *Server) serveDemo(ctx *fasthttp.RequestCtx, k *knobs) {
	status, body := s.demoResponse(ctx)
	if k.statusSet {
		status = k.status
	}
	ctx.SetStatusCode(status)
	setJSONBody(ctx, body, k.chunked)
}

// demoResponse routes a demo request. body is never modified afterwards, so
// it is sent without copying.
func (s *Server) demoResponse(ctx *fasthttp.RequestCtx) (status int, body []byte) {
	d := s.demo
	path := ctx.Path()
	key, isItem := d.itemKey(path)
	isList := string(path) == d.collection
	if !isItem && !isList && string(path) != healthPath {
		return fasthttp.StatusNotFound, errorJSON("no route for ", path, "")
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, allowDemo)
		return fasthttp.StatusMethodNotAllowed, errorJSON("method not allowed: ", ctx.Method(), "; allowed: "+allowDemo)
	}
	switch {
	case isList:
		return d.listResponse(ctx)
	case isItem:
		if b := lookup(d.items, key); b != nil {
			return fasthttp.StatusOK, b
		}
		return fasthttp.StatusNotFound, errorJSON(d.noun+" ", key, " not found")
	}
	return fasthttp.StatusOK, s.health
}

// listResponse answers GET on the collection, filtered if the request asks.
func (d *demoAPI) listResponse(ctx *fasthttp.RequestCtx) (int, []byte) {
	if d.filterArg == "" || bytes.IndexByte(ctx.Request.Header.RequestURI(), '?') < 0 {
		return fasthttp.StatusOK, d.list
	}
	v := ctx.QueryArgs().Peek(d.filterArg)
	if v == nil {
		return fasthttp.StatusOK, d.list
	}
	if b := lookup(d.filtered, v); b != nil {
		return fasthttp.StatusOK, b
	}
	if _, ok := parseDecimal(v, 1<<31); ok {
		return fasthttp.StatusOK, emptyList
	}
	return fasthttp.StatusBadRequest, errorJSON("invalid "+d.filterArg+" filter ", v, ": want an integer id")
}

var emptyList = []byte("[]")

// errorJSON returns {"error": prefix+value+suffix}.
func errorJSON(prefix string, value []byte, suffix string) []byte {
	msg := make([]byte, 0, len(prefix)+len(value)+len(suffix))
	msg = append(msg, prefix...)
	msg = append(msg, value...)
	msg = append(msg, suffix...)
	b := make([]byte, 0, 2*len(msg)+16)
	b = append(b, `{"error":`...)
	b = appendJSONString(b, msg)
	return append(b, '}')
}
