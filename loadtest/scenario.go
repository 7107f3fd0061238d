package loadtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The executors, named as in k6.
const (
	ConstantArrivalRate = "constant-arrival-rate" // open model: Rate iterations/s for Duration
	RampingArrivalRate  = "ramping-arrival-rate"  // open model: StartRate, then linear Stages
	ConstantVUs         = "constant-vus"          // closed model: VUs back-to-back for Duration
)

// Bounds that keep every run finite.
const (
	MaxDuration    = time.Hour        // load phase of one scenario
	MaxVUs         = 10000            // connections / in-flight requests
	DefaultTimeout = 10 * time.Second // per request
	DefaultTarget  = "http://127.0.0.1:8080"
)

// Scenario is one load test, read from a JSON file shared by loadgen and the
// k6 scripts (loadtest/k6). Fields are documented in scenarios/README.md;
// Load reads, defaults and validates one.
//
// A Scenario is not modified by Run and may be shared.
type Scenario struct {
	Name        string `json:"name"`        // default: the file name without .json
	Description string `json:"description"` // free text

	// Target is the base URL ("http://host:port"), overridden by loadgen
	// -target or k6 __ENV.TARGET. Default DefaultTarget. "{{target}}" in
	// actions is this value.
	Target string `json:"target"`

	Method   string            `json:"method"`    // default GET
	Paths    []string          `json:"paths"`     // request URIs (path?query), used in turn; default ["/"]
	Headers  map[string]string `json:"headers"`   // sent with every request
	Body     string            `json:"body"`      // request body
	BodySize int               `json:"body_size"` // generated body of this many bytes ('x'); 0: Body

	// Expect lists the statuses counted as success; empty: 200..399.
	Expect []int `json:"expect"`
	// Timeout bounds one request (write + wait + read); default 10s.
	Timeout Duration `json:"timeout"`

	Executor string `json:"executor"` // constant-arrival-rate | ramping-arrival-rate | constant-vus

	// Open model (arrival-rate executors).
	Rate            float64  `json:"rate"`              // iterations per second (constant-arrival-rate)
	StartRate       float64  `json:"start_rate"`        // iterations per second at t=0 (ramping)
	Stages          []Stage  `json:"stages"`            // ramping: rate moves linearly to each target
	PreAllocatedVUs int      `json:"pre_allocated_vus"` // VUs (connections, opened as arrivals need them) counted from the start; default 10
	MaxVUsField     int      `json:"max_vus"`           // the most connections open at once; default = pre_allocated_vus
	Duration        Duration `json:"duration"`          // constant-arrival-rate and constant-vus

	// Closed model.
	VUs        int `json:"vus"`        // connections sending back to back
	Iterations int `json:"iterations"` // stop after this many requests in all; 0: Duration only

	// Thresholds are k6-like conditions on the summary, e.g. "p99 < 50ms",
	// "error_rate < 0.01"; see ParseThreshold. A failing one fails the run.
	Thresholds []string `json:"thresholds"`
	// Actions run at offsets from the start of the load: admin calls,
	// signals to and restarts of stack processes.
	Actions []Action `json:"actions"`
	// Stack describes the processes `loadgen -stack` starts; nil: one
	// upstream and a gateway routing everything to it.
	Stack *Stack `json:"stack"`

	dir string // directory of the file, for Stack.Config
}

// Stage is one step of a ramping executor.
type Stage struct {
	Duration Duration `json:"duration"` // > 0
	Target   float64  `json:"target"`   // iterations per second reached at its end
}

// Action is one timed step. Exactly one of HTTP, Signal and Start is set.
type Action struct {
	At     Duration      `json:"at"`   // offset from the start of the load
	Name   string        `json:"name"` // for reports; default a description
	HTTP   *HTTPAction   `json:"http"`
	Signal *SignalAction `json:"signal"`
	Start  *StartAction  `json:"start"`
}

// HTTPAction is a request sent once, e.g. POST {{admin}}/reload.
type HTTPAction struct {
	Method  string            `json:"method"` // default GET
	URL     string            `json:"url"`    // absolute, with {{placeholders}}
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	Expect  []int             `json:"expect"` // default 200..299
}

// SignalAction sends a signal to a stack process.
type SignalAction struct {
	Process string `json:"process"` // "gateway" or a Stack.Upstreams name
	Name    string `json:"name"`    // KILL, TERM, INT, HUP, STOP, CONT, USR1, USR2
}

// StartAction starts a stack process again (after a KILL or TERM) on the
// same address.
type StartAction struct {
	Process string `json:"process"`
}

// Stack is the set of processes `loadgen -stack` runs for the scenario.
type Stack struct {
	// Upstreams are bin/upstream instances on free loopback ports; default
	// one named "upstream-1" with default flags.
	Upstreams []StackUpstream `json:"upstreams"`
	// Config is the gateway config template, a file relative to the
	// scenario file; empty: DefaultGatewayConfig. See Vars for placeholders.
	Config string `json:"config"`
	// GatewayArgs are extra fastgate flags.
	GatewayArgs []string `json:"gateway_args"`
	// Ready is the path polled through the gateway until it answers
	// below 500; default the first of Paths.
	Ready string `json:"ready"`
}

// StackUpstream is one bin/upstream process.
type StackUpstream struct {
	Name string   `json:"name"` // unique; "{{upstream:NAME}}" is its URL
	Args []string `json:"args"` // bin/upstream flags besides -listen and -name
}

// Duration is a time.Duration written in JSON as a Go duration string ("250ms").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"10s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"10s\": %w", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Load reads the scenario file path, sets defaults and validates it.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	sc, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("loadtest: scenario %s: %w", path, err)
	}
	sc.dir = filepath.Dir(path)
	if sc.Name == "" {
		sc.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return sc, nil
}

// Parse decodes a scenario strictly (an unknown field is an error), sets
// defaults and validates it.
func Parse(b []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	sc := &Scenario{}
	if err := dec.Decode(sc); err != nil {
		return nil, err
	}
	sc.SetDefaults()
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}

// SetDefaults fills the zero fields that have defaults.
func (sc *Scenario) SetDefaults() {
	if sc.Target == "" {
		sc.Target = DefaultTarget
	}
	if sc.Method == "" {
		sc.Method = "GET"
	}
	if len(sc.Paths) == 0 {
		sc.Paths = []string{"/"}
	}
	if sc.Timeout == 0 {
		sc.Timeout = Duration(DefaultTimeout)
	}
	if sc.Executor != ConstantVUs {
		if sc.PreAllocatedVUs == 0 {
			sc.PreAllocatedVUs = 10
		}
		if sc.MaxVUsField < sc.PreAllocatedVUs {
			sc.MaxVUsField = sc.PreAllocatedVUs
		}
	}
	for i := range sc.Actions {
		if h := sc.Actions[i].HTTP; h != nil && h.Method == "" {
			h.Method = "GET"
		}
	}
}

// Validate reports every problem, each with its field path.
func (sc *Scenario) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
	}
	if err := checkTarget(sc.Target); err != nil {
		bad("target", "%s", err)
	}
	for i, p := range sc.Paths {
		if !strings.HasPrefix(p, "/") {
			bad(fmt.Sprintf("paths[%d]", i), "%q must start with /", p)
		}
	}
	if sc.BodySize < 0 || sc.BodySize > 64<<20 {
		bad("body_size", "%d must be 0..67108864", sc.BodySize)
	}
	if sc.BodySize > 0 && sc.Body != "" {
		bad("body_size", "set body or body_size, not both")
	}
	for i, s := range sc.Expect {
		if s < 100 || s > 599 {
			bad(fmt.Sprintf("expect[%d]", i), "%d is not a status (100..599)", s)
		}
	}
	if sc.Timeout < 0 {
		bad("timeout", "must be > 0")
	}
	sc.validateExecutor(bad)
	for i, t := range sc.Thresholds {
		if _, err := ParseThreshold(t); err != nil {
			bad(fmt.Sprintf("thresholds[%d]", i), "%s", err)
		}
	}
	for i := range sc.Actions {
		sc.Actions[i].validate(fmt.Sprintf("actions[%d]", i), sc.LoadDuration(), bad)
	}
	if sc.Stack != nil {
		sc.Stack.validate(bad)
	}
	return errors.Join(errs...)
}

// validateExecutor checks the executor and the fields it uses.
func (sc *Scenario) validateExecutor(bad func(path, format string, args ...any)) {
	switch sc.Executor {
	case ConstantArrivalRate:
		if sc.Rate <= 0 {
			bad("rate", "must be > 0 for %s", sc.Executor)
		}
		if sc.Duration <= 0 {
			bad("duration", "must be > 0 for %s", sc.Executor)
		}
	case RampingArrivalRate:
		if len(sc.Stages) == 0 {
			bad("stages", "must list at least one stage for %s", sc.Executor)
		}
		if sc.StartRate < 0 {
			bad("start_rate", "must be >= 0")
		}
		for i, st := range sc.Stages {
			if st.Duration <= 0 {
				bad(fmt.Sprintf("stages[%d].duration", i), "must be > 0")
			}
			if st.Target < 0 {
				bad(fmt.Sprintf("stages[%d].target", i), "must be >= 0")
			}
		}
	case ConstantVUs:
		if sc.VUs <= 0 || sc.VUs > MaxVUs {
			bad("vus", "%d must be 1..%d for %s", sc.VUs, MaxVUs, sc.Executor)
		}
		if sc.Duration <= 0 {
			bad("duration", "must be > 0 for %s (it bounds the run even with iterations)", sc.Executor)
		}
		if sc.Iterations < 0 {
			bad("iterations", "must be >= 0")
		}
	default:
		bad("executor", "%q: want %s, %s or %s", sc.Executor, ConstantArrivalRate, RampingArrivalRate, ConstantVUs)
		return
	}
	if sc.Executor != ConstantVUs && (sc.PreAllocatedVUs < 1 || sc.MaxVUsField > MaxVUs) {
		bad("max_vus", "pre_allocated_vus %d and max_vus %d must be within 1..%d", sc.PreAllocatedVUs, sc.MaxVUsField, MaxVUs)
	}
	if d := sc.LoadDuration(); d > MaxDuration {
		bad("duration", "the load lasts %s; at most %s", d, MaxDuration)
	}
}

// checkTarget checks a base URL: http://host:port without a path.
func checkTarget(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("%q: want http://host[:port] without a path", s)
	}
	return nil
}

// LoadDuration returns how long the load phase lasts.
func (sc *Scenario) LoadDuration() time.Duration {
	if sc.Executor != RampingArrivalRate {
		return sc.Duration.D()
	}
	var d time.Duration
	for _, st := range sc.Stages {
		d += st.Duration.D()
	}
	return d
}

// MaxVUs returns the most VUs (connections) the run may use.
func (sc *Scenario) MaxVUs() int {
	if sc.Executor == ConstantVUs {
		return sc.VUs
	}
	return sc.MaxVUsField
}

// validate checks one action.
func (a *Action) validate(path string, load time.Duration, bad func(path, format string, args ...any)) {
	n := 0
	if a.HTTP != nil {
		n++
		if !strings.HasPrefix(a.HTTP.URL, "http://") && !strings.HasPrefix(a.HTTP.URL, "{{") {
			bad(path+".http.url", "%q: want an absolute http:// URL or a {{placeholder}} base", a.HTTP.URL)
		}
	}
	if a.Signal != nil {
		n++
		if a.Signal.Process == "" {
			bad(path+".signal.process", "must name a stack process")
		}
		if _, ok := SignalByName(a.Signal.Name); !ok {
			bad(path+".signal.name", "%q: want one of KILL TERM INT HUP STOP CONT USR1 USR2", a.Signal.Name)
		}
	}
	if a.Start != nil {
		n++
		if a.Start.Process == "" {
			bad(path+".start.process", "must name a stack process")
		}
	}
	if n != 1 {
		bad(path, "set exactly one of http, signal, start")
	}
	if a.At < 0 || a.At.D() > load {
		bad(path+".at", "%s must be within the load phase (0..%s)", a.At.D(), load)
	}
}

// validate checks the stack.
func (st *Stack) validate(bad func(path, format string, args ...any)) {
	seen := map[string]bool{"gateway": true}
	for i, u := range st.Upstreams {
		p := fmt.Sprintf("stack.upstreams[%d].name", i)
		if u.Name == "" || seen[u.Name] {
			bad(p, "%q must be non-empty, unique and not \"gateway\"", u.Name)
		}
		seen[u.Name] = true
	}
	if st.Ready != "" && !strings.HasPrefix(st.Ready, "/") {
		bad("stack.ready", "%q must start with /", st.Ready)
	}
}

// Expand replaces every {{name}} in s by vars[name]; unknown names stay.
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}
