package loadtest

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrorKind classifies a transport error (no HTTP response).
type ErrorKind uint8

// The transport error kinds, in report order.
const (
	ErrTimeout ErrorKind = iota
	ErrRefused
	ErrReset
	ErrOther
	numErrorKinds
)

var errorKindNames = [numErrorKinds]string{"timeout", "refused", "reset", "other"}

// String returns the kind's name as used in reports: timeout, refused, reset, other.
func (k ErrorKind) String() string { return errorKindNames[k] }

// classify returns the kind of a transport error.
func classify(err error) ErrorKind {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return ErrTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, fasthttp.ErrConnectionClosed):
		return ErrReset
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	return ErrOther
}

// maxStatus bounds the status codes counted one by one; others count as 0.
const maxStatus = 600

// Stats is what a set of requests produced: latencies, status counts,
// failures and dropped iterations. Stats merge exactly.
//
// A Stats is not safe for concurrent use; shard guards one per worker.
type Stats struct {
	Latency Histogram
	// Lag is the open model's dispatch lag: how late the generator itself
	// handed each request to a VU. It is part of Latency (which counts from
	// the intended send time); a lag near Latency means the generator, not
	// the target, set the figure.
	Lag      Histogram
	Status   [maxStatus]uint64 // responses by status code
	Errors   [numErrorKinds]uint64
	Failed   uint64 // responses with an unexpected status, plus transport errors
	Dropped  uint64 // iterations not started: no free VU at their intended time
	Requests uint64 // requests completed: responses plus transport errors
	BytesIn  uint64 // response body bytes
}

// Merge adds o to s.
func (s *Stats) Merge(o *Stats) {
	s.Latency.Merge(&o.Latency)
	s.Lag.Merge(&o.Lag)
	for i, c := range o.Status {
		s.Status[i] += c
	}
	for i, c := range o.Errors {
		s.Errors[i] += c
	}
	s.Failed += o.Failed
	s.Dropped += o.Dropped
	s.Requests += o.Requests
	s.BytesIn += o.BytesIn
}

// Reset empties s.
func (s *Stats) Reset() { *s = Stats{} }

// shard is one worker's Stats. Its mutex is only contended by the progress
// reporter, once per tick.
type shard struct {
	mu sync.Mutex
	s  Stats
}

// recordResponse counts one response of status that took d.
func (sh *shard) recordResponse(d time.Duration, status int, bodyLen int, ok bool) {
	if status < 0 || status >= maxStatus {
		status = 0
	}
	sh.mu.Lock()
	sh.s.Latency.Record(d)
	sh.s.Status[status]++
	sh.s.Requests++
	sh.s.BytesIn += uint64(bodyLen)
	if !ok {
		sh.s.Failed++
	}
	sh.mu.Unlock()
}

// recordError counts one transport error after d.
func (sh *shard) recordError(d time.Duration, err error) {
	k := classify(err)
	sh.mu.Lock()
	sh.s.Latency.Record(d)
	sh.s.Errors[k]++
	sh.s.Requests++
	sh.s.Failed++
	sh.mu.Unlock()
}

// addTo merges the shard's stats into dst.
func (sh *shard) addTo(dst *Stats) {
	sh.mu.Lock()
	dst.Merge(&sh.s)
	sh.mu.Unlock()
}
