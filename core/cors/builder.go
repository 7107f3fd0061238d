// Package cors is the gateway's CORS filter (Fetch standard,
// https://fetch.spec.whatwg.org/#http-cors-protocol): a route's cors
// policy compiled once per route. The Filter answers the route's
// preflights itself (204, or 403 when the origin, method or headers are
// not allowed) so they never reach the upstream, and in After adds
// Access-Control-Allow-Origin and friends to the actual responses of
// allowed origins, and Origin to Vary on every response. builder.go
// builds; filter.go is the request path; origin.go parses and matches
// origins.
package cors

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
)

const metricRejected = "fastgate_cors_preflight_rejected_total"

// Errors a rejected preflight gets.
var (
	errOrigin  = &core.Error{Status: fasthttp.StatusForbidden, Err: errors.New("CORS preflight: origin not allowed")}
	errMethod  = &core.Error{Status: fasthttp.StatusForbidden, Err: errors.New("CORS preflight: method not allowed")}
	errHeaders = &core.Error{Status: fasthttp.StatusForbidden, Err: errors.New("CORS preflight: request header not allowed")}
)

// Builder is a core.FilterBuilder for routes' cors. It holds nothing; it
// is safe for concurrent use.
type Builder struct{}

var _ core.FilterBuilder = Builder{}

// Key returns the route's cors, nil when it has none.
func (Builder) Key(cfg *config.Config, rc *config.Route) any {
	if rc.CORS == nil {
		return nil
	}
	return *rc.CORS
}

// Validate compiles the policy without keeping it.
func (Builder) Validate(e *core.Env) error {
	_, err := compile(e.Route.CORS)
	return err
}

// Build returns the route's Filter and makes the router send the route's
// preflights to it.
func (Builder) Build(e *core.Env) (core.Filter, error) {
	f, err := compile(e.Route.CORS)
	if err != nil {
		return nil, err
	}
	f.rejected = e.Counter(metricRejected + `{route=` + strconv.Quote(e.Route.Name) + `}`)
	e.AnswersPreflight()
	return f, nil
}

// Filter is a route's compiled CORS policy. It is immutable and safe for
// concurrent use; it allocates nothing per request.
type Filter struct {
	anyOrigin   bool // allow_origins: "*"
	nullOrigin  bool // allow_origins lists "null"
	origins     []origin
	credentials bool

	anyMethod    bool
	methods      [][]byte
	methodsValue []byte // Access-Control-Allow-Methods of a listed set

	// allow_headers: reflect when empty, any when "*", else the lowercase
	// list.
	reflectHeaders bool
	anyHeader      bool
	headers        [][]byte
	headersValue   []byte

	exposeValue    []byte // Access-Control-Expose-Headers, or nil
	maxAgeValue    []byte // Access-Control-Max-Age, or nil
	privateNetwork bool

	rejected *metrics.Counter
}

// compile builds the Filter of c; config.Validate has checked it, so an
// error here is one the config missed.
func compile(c *config.CORS) (*Filter, error) {
	f := &Filter{credentials: c.AllowCredentials, privateNetwork: c.AllowPrivateNetwork}
	if len(c.AllowOrigins) == 0 {
		return nil, errors.New(`cors.allow_origins: must list at least one origin, such as ["https://app.example.com"]`)
	}
	for i, s := range c.AllowOrigins {
		o, err := config.ParseCORSOrigin(s)
		if err != nil {
			return nil, errors.New("cors.allow_origins[" + strconv.Itoa(i) + "]: " + err.Error())
		}
		switch {
		case o.Any:
			f.anyOrigin = true
		case o.Null:
			f.nullOrigin = true
		default:
			f.origins = append(f.origins, compileOrigin(o))
		}
	}
	if f.anyOrigin && f.credentials {
		return nil, errors.New(`cors.allow_origins: "*" with allow_credentials: true would let every site make credentialed requests; list the origins`)
	}
	methods := c.AllowMethods
	if methods == nil {
		methods = config.CORSDefaultMethods
	}
	f.anyMethod, f.methods, f.methodsValue = tokenList(methods, false)
	if len(c.AllowHeaders) == 0 {
		f.reflectHeaders = true
	} else {
		f.anyHeader, f.headers, f.headersValue = tokenList(c.AllowHeaders, true)
	}
	if len(c.ExposeHeaders) > 0 {
		f.exposeValue = []byte(strings.Join(c.ExposeHeaders, ", "))
	}
	if s := c.MaxAge.D() / time.Second; s > 0 {
		f.maxAgeValue = strconv.AppendInt(nil, int64(s), 10)
	}
	return f, nil
}

// tokenList compiles a method or header list: "*" alone is any; lower
// lowercases the names (header names compare case-insensitively).
func tokenList(list []string, lower bool) (any bool, names [][]byte, value []byte) {
	if len(list) == 1 && list[0] == "*" {
		return true, nil, []byte("*")
	}
	for _, s := range list {
		if lower {
			s = strings.ToLower(s)
		}
		names = append(names, []byte(s))
	}
	return false, names, []byte(strings.Join(list, ", "))
}
