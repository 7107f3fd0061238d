// Package loadtest is fastgate's load engine and load suite: the scenario
// files in scenarios/ (shared with the k6 scripts in k6/), the Go engine
// that runs them (used by cmd/loadgen and by the bench harness), and the
// stack runner that starts an upstream and a gateway for a scenario.
//
// # Engine
//
// Open model (constant-arrival-rate, ramping-arrival-rate): iterations are
// due at exact offsets of the (piecewise linear) rate, waited for on a
// timerfd (Go's timers fire up to a millisecond late). A VU is a
// keep-alive connection: each iteration goes out on the one that went
// idle last (LIFO, so the connections a stall opened go idle afterwards
// instead of carrying the load round-robin), on a new one up to max_vus,
// or — when max_vus are busy — it is counted as dropped, as k6 does,
// instead of the generator silently slowing down. The dispatcher writes
// each request itself (serialized once per path) and each connection's
// reader reads its responses (open.go). Latency counts from the intended
// start, so a stalled target cannot hide its queueing (no coordinated
// omission). Closed model (constant-vus): VUs send back to back for the
// duration or until iterations are used up; a VU owns a request and a
// response object, reused for every request, and requests go through one
// fasthttp.HostClient with MaxConns = VUs. Neither model retries: a
// failure is counted, not hidden.
//
// Latencies go into a log-linear Histogram (128 sub-buckets per power of
// two, ≤0.4% relative error, mergeable); each VU (closed) or connection
// (open) records into its own shard and the shards are merged for the progress line and the Summary.
// Thresholds ("p99 < 50ms", "error_rate < 0.01") are evaluated on the
// Summary; a failing threshold or action fails the run.
//
// The scenario file format is documented in scenarios/README.md.
package loadtest
