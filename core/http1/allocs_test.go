//go:build !race

package http1

import (
	"testing"
	"time"
)

// TestAllocs guards the hot entry points: a head found, checked (accepted
// and refused) and a Retry-After in seconds allocate nothing.
func TestAllocs(t *testing.T) {
	f := func(name string, fn func()) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Fatalf("%s: got %v allocs per run; want 0", name, n)
		}
	}
	head := []byte(benchHead)
	bad := []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n")
	retryAfter := []byte("120")
	now := time.Now()
	var n int
	var err error
	f("HeadEnd", func() { n = HeadEnd(head) })
	f("CheckResponseHead accepted", func() { err = CheckResponseHead(head) })
	f("CheckResponseHead refused", func() { err = CheckResponseHead(bad) })
	fields := []byte("Host: a\r\nX-A: 1\r\nContent-Length: 3\r\n\r\n")
	names := 0
	f("CheckRequestFields", func() { err = CheckRequestFields(fields, false, func([]byte) { names++ }) })
	f("ParseRetryAfter seconds", func() { d, _ := ParseRetryAfter(retryAfter, now); n = int(d) })
	_, _ = n, err
}
