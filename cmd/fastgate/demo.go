package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"fastgate/cmd/upstream/stub"
	"fastgate/core/config"
	"fastgate/examples"
)

// startDemoServices starts a demo service on every target of every
// upstream of the demo config: users, orders and products serve their demo
// JSON APIs, currency the SOAP demo, any other upstream echoes requests.
func startDemoServices(cfg *config.Config, log *slog.Logger) (stop func(), err error) {
	var running []*stub.Running
	var others []func()
	stop = func() {
		for _, r := range running {
			r.Close() //nolint:errcheck
		}
		for _, s := range others {
			s()
		}
	}
	names := make([]string, 0, len(cfg.Upstreams))
	for name := range cfg.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		opts := stub.Options{Name: name}
		switch name {
		case "users", "orders", "products":
			opts.Demo = name
		default:
			opts.Echo = true
		}
		for _, t := range cfg.Upstreams[name].Targets {
			addr, err := t.Addr()
			if err != nil {
				stop()
				return nil, err
			}
			if start := demoServers[name]; start != nil {
				s, bound, err := start(addr)
				if err != nil {
					stop()
					return nil, fmt.Errorf("demo service %s on %s: %w (is the port taken?)", name, addr, err)
				}
				others = append(others, s)
				log.Info("demo service started", "name", name, "addr", bound)
				continue
			}
			r, err := stub.Start(addr, opts)
			if err != nil {
				stop()
				return nil, fmt.Errorf("demo service %s on %s: %w (is the port taken?)", name, addr, err)
			}
			running = append(running, r)
			log.Info("demo service started", "name", name, "addr", r.Addr())
		}
	}
	return stop, nil
}

// demoProtoVar names, in the demo config, the inventory service's .proto,
// which the binary carries and writes to a temporary file on first use.
const demoProtoVar = "FASTGATE_DEMO_INVENTORY_PROTO"

var demoProto struct {
	once sync.Once
	path string
	err  error
}

// demoLookupEnv is os.LookupEnv, and the path of the embedded inventory
// proto for demoProtoVar.
func demoLookupEnv(name string) (string, bool) {
	if name != demoProtoVar {
		return os.LookupEnv(name)
	}
	demoProto.once.Do(func() {
		dir, err := os.MkdirTemp("", "fastgate-demo-")
		if err != nil {
			demoProto.err = err
			return
		}
		demoProto.path = filepath.Join(dir, "inventory.proto")
		demoProto.err = os.WriteFile(demoProto.path, []byte(examples.InventoryProto), 0o644)
	})
	if demoProto.err != nil {
		return "", false
	}
	return demoProto.path, true
}

// demoServers start the demo services that are no stub, by upstream name.
var demoServers = map[string]func(addr string) (stop func(), bound string, err error){
	"currency":  stub.StartSOAPDemo,
	"inventory": stub.StartGRPCInventory,
}

// printDemo prints curl lines that work against the demo as printed. cfg
// is the demo config: a JWT of its "demo" issuer is minted for the lines.
func printDemo(w io.Writer, addr string, cfg *config.Config) {
	adminAddr := cfg.Admin.Listen
	base := "http://" + addr
	fmt.Fprintf(w, `
fastgate demo is up on %[1]s. Try:

  curl -s %[1]s/api/users/1                  # route template + rewrite to /users/1
  curl -s %[1]s/api/users                    # strip_prefix /api
  curl -si %[1]s/api/orders?user=2           # p2c over two order services (X-Stub-Addr), retries
  for i in 1 2 3 4 5 6 7; do curl -s -o /dev/null -w '%%{http_code} ' %[1]s/api/products/sku-1001; done   # 5/s per IP, then 429
  curl -s %[1]s/api/products/sku-1001        # another service
  curl -s -X POST %[1]s/echo/hello -d 'hi'   # what the upstream received: X-Forwarded-*, X-Request-ID
  curl -s -H 'Host: admin.localhost' %[1]s/panel   # host routing, Host preserved
  curl -s %[1]s/status                       # a static response, no upstream
  curl -si %[1]s/v1/users/7                  # a 308 redirect to /api/users/7

  curl -si %[1]s/api/account/profile         # 401 and a WWW-Authenticate per method
  curl -s -H 'X-API-Key: demo-key-4f1c2a9b7e3d5a6c' %[1]s/api/account/profile   # consumer mobile-app: X-Consumer upstream, no key
  curl -s -u alice:wonderland %[1]s/api/account/profile    # basic auth, consumer alice
  curl -s -H 'Authorization: Bearer %[2]s' %[1]s/api/account/profile   # a JWT (HS256, valid 24h)
  curl -si -H 'X-API-Key: demo-key-4f1c2a9b7e3d5a6c' %[1]s/api/staff/panel   # 403: mobile-app is not staff
  curl -si -X OPTIONS -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: POST' %[1]s/api/account/profile   # CORS preflight, answered here

  curl -s %[1]s/api/dashboard/1              # aggregation: the user and their orders in one JSON
  curl -si %[1]s/api/catalog/sku-1002        # cached: run it twice, X-Cache MISS then HIT with Age
  curl -s '%[1]s/api/convert/EUR/USD?amount=10'   # JSON to a SOAP service and back
  curl -s '%[1]s/api/convert/EUR/XXX?amount=10'   # a SOAP fault as a JSON 400
  curl -s %[1]s/api/stock/sku-1001           # JSON to a gRPC unary call (examples/inventory.proto)
  curl -s %[1]s/inv/v1/stock/sku-9           # a whole gRPC service by its google.api.http annotations; NOT_FOUND as 404
  node --experimental-websocket -e "const w=new WebSocket('ws://%[3]s/ws/echo');w.onopen=()=>w.send('hi');w.onmessage=e=>{console.log(e.data);w.close()}"   # WebSocket echo
`, base, demoToken(cfg), addr)
	if adminAddr != "off" {
		fmt.Fprintf(w, `
  curl -s http://%[1]s/metrics | grep fastgate_requests_total   # Prometheus metrics by route
  curl -s http://%[1]s/upstreams             # targets, health, in-flight
  curl -s http://%[1]s/stats                 # the dashboard's numbers: per-route req/s, p50/p99, errors
  open http://%[1]s/ in a browser            # the live dashboard
  curl -s http://%[1]s/config                # the effective config, secrets redacted
  curl -s -d '{"prefix": "GET 127.0.0.1/api/catalog/"}' http://%[1]s/cache/purge   # drop cached catalog entries
`, adminAddr)
	}
	fmt.Fprint(w, "\nThe access log (JSON lines) follows below. Ctrl-C stops it.\n\n")
}

// demoToken signs a token of the demo config's "demo" JWT issuer for the
// subject demo-user in group customers, valid for 24 hours; "" without
// such an issuer.
func demoToken(cfg *config.Config) string {
	for _, j := range cfg.JWT {
		if j == nil || j.Name != "demo" {
			continue
		}
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "demo-user", "iss": j.Issuer, "groups": []string{"customers"},
			"iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
		})
		s, err := tok.SignedString([]byte(j.Secret))
		if err != nil {
			return ""
		}
		return s
	}
	return ""
}
