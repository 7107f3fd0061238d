package loadtest

import (
	"context"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// sleeper waits for the open model's arrivals on a timerfd.
//
// A Go timer is not precise enough for them: when nothing else wakes the
// process, the runtime waits for its next timer in epoll_wait, whose
// timeout is in milliseconds, rounded up, so a wait of 200µs lasted about
// 1.1ms (measured: 0.9ms late at the median). Every arrival due less than
// a millisecond after the previous one went out up to a millisecond late,
// and that lateness was part of every latency the open model reports,
// whatever the target. A timerfd is a file the poller watches: epoll_wait
// returns when it fires, about 40µs late on the same machine.
type sleeper struct {
	f   *os.File
	raw syscall.RawConn
	d   time.Duration
	set bool // the next step arms the timer and waits
	err error

	step func(fd uintptr) bool
}

// newSleeper returns a sleeper, or one on Go's timers when the kernel has
// no timerfd.
func newSleeper() *sleeper {
	fd, _, errno := syscall.RawSyscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return &sleeper{}
	}
	s := &sleeper{f: os.NewFile(fd, "timerfd")}
	raw, err := s.f.SyscallConn()
	if err != nil {
		s.f.Close() //nolint:errcheck
		return &sleeper{}
	}
	s.raw = raw
	s.step = s.timerStep
	return s
}

const clockMonotonic = 1 // CLOCK_MONOTONIC

// maxSleep bounds one wait, so that a cancelled context is seen soon.
const maxSleep = 50 * time.Millisecond

// sleep waits d, or until ctx is done (then it returns ctx's error).
func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	if s.f == nil {
		return sleepTimer(ctx, d)
	}
	until := time.Now().Add(d)
	for d > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.d, s.set, s.err = min(d, maxSleep), true, nil
		if err := s.raw.Read(s.step); err != nil {
			return err
		}
		if s.err != nil {
			return sleepTimer(ctx, time.Until(until))
		}
		d = time.Until(until) // each wait ends a little late: no drift over many
	}
	return ctx.Err()
}

// timerStep arms the timer on its first call, which comes after the
// poller's readiness was reset (a timer that fired before that would be
// missed), then reads the expiry.
func (s *sleeper) timerStep(fd uintptr) bool {
	if s.set {
		s.set = false
		spec := [4]int64{0, 0, 0, int64(s.d)} // it_interval 0, it_value d
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
			s.err = errno
			return true
		}
		return false
	}
	var b [8]byte
	_, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b)), uintptr(len(b)))
	return errno != syscall.EAGAIN
}

// close releases the timerfd.
func (s *sleeper) close() {
	if s.f != nil {
		s.f.Close() //nolint:errcheck
	}
}
