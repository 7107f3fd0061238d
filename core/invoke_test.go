package core_test

import (
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/core/coretest"
)

// invokeBuilder's terminal answers with the outcome of an Invoke through
// the route's upstream, whose attempts a test scripts by target address.
type invokeBuilder struct{ script *invokeScript }

type invokeScript struct {
	mu    sync.Mutex
	plan  map[string][]core.Outcome // by address, consumed in order
	tried []string
}

func (s *invokeScript) attempt(addr string, _ time.Time) core.Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tried = append(s.tried, addr)
	p := s.plan[addr]
	if len(p) == 0 {
		return core.Outcome{Status: 200}
	}
	s.plan[addr] = p[1:]
	return p[0]
}

type invokeTerminal struct {
	up     *core.Upstream
	script *invokeScript
}

func (b invokeBuilder) Key(_ *config.Config, rc *config.Route) any {
	if rc.Name == "invoke" {
		return true
	}
	return nil
}
func (invokeBuilder) Validate(*core.Env) error { return nil }
func (b invokeBuilder) Build(e *core.Env) (core.Terminal, error) {
	return &invokeTerminal{up: e.Upstream("u"), script: b.script}, nil
}

func (t *invokeTerminal) Serve(ctx *fasthttp.RequestCtx, r *core.Request) {
	c := core.Call{Client: r}
	if err := t.up.Invoke(&c, true, t.script.attempt); err != nil {
		core.WriteError(&ctx.Response, err, r.RequestID)
		return
	}
	ctx.SetStatusCode(200)
	ctx.SetBodyString(c.Target())
}

// TestInvoke: Invoke picks targets with the upstream's balancer and
// retries unsent attempts and retryable statuses on another target; a
// failure with nothing left to try becomes the gateway's error.
func TestInvoke(t *testing.T) {
	f := func(plan map[string][]core.Outcome, want int, wantTried int) {
		t.Helper()
		s := &invokeScript{plan: plan}
		gw := coretest.Start(t, `
upstreams:
  u:
    targets: [{url: "http://10.0.0.1:80"}, {url: "http://10.0.0.2:80"}]
    retries: {attempts: 2, on: [connect_error, timeout, 503], backoff: {base: 1ms, max: 1ms}}
routes:
  - {name: invoke, static: {body: unused}}
`, core.Options{Terminals: []core.TerminalBuilder{invokeBuilder{script: s}}}, nil)
		resp := gw.Do("GET", "http://gw/x")
		defer fasthttp.ReleaseResponse(resp)
		if resp.StatusCode() != want || len(s.tried) != wantTried {
			t.Fatalf("plan %v: got %d after %v; want %d after %d attempts", plan, resp.StatusCode(), s.tried, want, wantTried)
		}
	}
	unsent := core.Outcome{Unsent: true}
	f(nil, 200, 1)
	f(map[string][]core.Outcome{"10.0.0.1:80": {unsent}, "10.0.0.2:80": {unsent}}, 502, 2)
	f(map[string][]core.Outcome{"10.0.0.1:80": {{Status: 503}}, "10.0.0.2:80": {{Status: 503}}}, 200, 2) // the last answer is the caller's
	f(map[string][]core.Outcome{"10.0.0.1:80": {{Timeout: true}}, "10.0.0.2:80": {{Timeout: true}}}, 504, 2)
}
