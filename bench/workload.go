package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"fastgate/loadtest"
)

// workload is one request shape of the bench, from workloads.json.
type workload struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Method      string            `json:"method"`
	Path        string            `json:"path"`
	Headers     map[string]string `json:"headers"`
	BodySize    int               `json:"body_size"`
	// Targets limits the rows; default all.
	Targets []string `json:"targets"`
	// FastgateConfig is a config template file (relative to the workloads
	// file) for this workload's fastgate; empty: the plain config.
	FastgateConfig string `json:"fastgate_config"`

	fastgateTmpl string // FastgateConfig's contents
}

// workloadFile is the JSON document of workloads.json.
type workloadFile struct {
	Comment   string     `json:"_comment"`
	Workloads []workload `json:"workloads"`
}

// loadWorkloads reads path and keeps the workloads named in only (all
// when empty).
func loadWorkloads(path string, only []string) ([]workload, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f workloadFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	var out []workload
	for i, w := range f.Workloads {
		if w.Name == "" || w.Path == "" || w.Path[0] != '/' {
			return nil, fmt.Errorf("bench: %s: workloads[%d]: name and path (starting with /) are required", path, i)
		}
		for _, t := range w.Targets {
			if !slices.Contains(allTargets, t) {
				return nil, fmt.Errorf("bench: %s: workloads[%d].targets: %q; want one of %v", path, i, t, allTargets)
			}
		}
		if len(w.Targets) == 0 {
			w.Targets = allTargets
		}
		if w.Method == "" {
			w.Method = "GET"
		}
		if w.FastgateConfig != "" {
			b, err := os.ReadFile(filepath.Join(filepath.Dir(path), w.FastgateConfig))
			if err != nil {
				return nil, fmt.Errorf("bench: %s: workloads[%d].fastgate_config: %w", path, i, err)
			}
			w.fastgateTmpl = string(b)
		}
		if len(only) == 0 || slices.Contains(only, w.Name) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: %s: no workload selected (have %d; -workloads %v)", path, len(f.Workloads), only)
	}
	return out, nil
}

// scenario returns the loadgen scenario of w against url: conns
// connections back to back for d.
func (w *workload) scenario(url string, conns int, d string) ([]byte, error) {
	sc := w.scenarioBase(url, d)
	sc["executor"], sc["vus"] = loadtest.ConstantVUs, conns
	return json.Marshal(sc)
}

// openScenario returns the loadgen scenario of w against url in the open
// model: rate arrivals per second for d (constant-arrival-rate), vus VUs
// started up front and more, up to maxVUs, while that many requests are in
// flight. loadgen counts each latency from the arrival's scheduled send
// time, not from when it was sent, so a target that stalls is charged
// with the queue it builds (no coordinated omission); an arrival finding
// maxVUs in flight is counted as dropped, without a latency.
func (w *workload) openScenario(url string, rate float64, vus, maxVUs int, d string) ([]byte, error) {
	sc := w.scenarioBase(url, d)
	sc["executor"], sc["rate"] = loadtest.ConstantArrivalRate, rate
	sc["pre_allocated_vus"], sc["max_vus"] = vus, max(vus, maxVUs)
	return json.Marshal(sc)
}

// scenarioBase returns the scenario fields of w against url for d that do
// not depend on the executor.
func (w *workload) scenarioBase(url, d string) map[string]any {
	return map[string]any{
		"name":      "bench-" + w.Name,
		"target":    url,
		"method":    w.Method,
		"paths":     []string{w.Path},
		"headers":   w.Headers,
		"body_size": w.BodySize,
		"duration":  d,
		"expect":    []int{200},
	}
}

// wrkScript returns the wrk Lua script sending w's requests.
func (w *workload) wrkScript() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "wrk.method = %q\n", w.Method)
	for k, v := range w.Headers {
		fmt.Fprintf(&b, "wrk.headers[%q] = %q\n", k, v)
	}
	if w.BodySize > 0 {
		fmt.Fprintf(&b, "wrk.body = string.rep(\"x\", %d)\n", w.BodySize)
	}
	return b.String()
}
