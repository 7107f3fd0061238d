// Package loadtest is fastgate's load engine and load suite: the scenario
// files in scenarios/ (shared with the k6 scripts in k6/), the Go engine
// that runs them (used by cmd/loadgen and by the bench harness), and the
// stack runner that starts an upstream and a gateway for a scenario.
//
// # Engine
//
// Open model (constant-arrival-rate, ramping-arrival-rate): iterations are
// due at exact offsets of the (piecewise linear) rate; each is handed to an
// idle VU (the pre-allocated ones are started before the clock), a new VU
// is started up to max_vus, or — when all are busy — the
// iteration is counted as dropped, as k6 does, instead of the generator
// silently slowing down. Latency counts from the intended start, so a
// stalled target cannot hide its queueing (no coordinated omission).
// Closed model (constant-vus): VUs send back to back for the duration or
// until iterations are used up. A VU owns a request and a response object,
// reused for every request; requests go through one fasthttp.HostClient
// with MaxConns = max VUs and no retries (a failure is counted, not
// hidden). In the open model it takes the most recently used idle
// connection (LIFO), so the connections a stall opened go idle afterwards
// instead of carrying the load round-robin.
//
// Latencies go into a log-linear Histogram (128 sub-buckets per power of
// two, ≤0.4% relative error, mergeable); each VU records into its own
// shard and the shards are merged for the progress line and the Summary.
// Thresholds ("p99 < 50ms", "error_rate < 0.01") are evaluated on the
// Summary; a failing threshold or action fails the run.
//
// The scenario file format is documented in scenarios/README.md.
package loadtest
