//go:build !linux

package loadtest

import (
	"context"
	"time"
)

// sleeper waits for the open model's arrivals on Go's timers, which
// wait a millisecond at least where the runtime's poller counts in
// milliseconds (sleep_linux.go has the precise one).
type sleeper struct{}

func newSleeper() *sleeper { return &sleeper{} }

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error { return sleepTimer(ctx, d) }

func (s *sleeper) close() {}
