// Package sysmon keeps Go's system monitor from deep sleep in fastgate
// and loadgen, processes that go idle between bursts all the time.
package sysmon

import (
	"os"
	"runtime"
	"strings"
	"syscall"
)

// Go's system monitor (sysmon, a thread of every Go program) sleeps
// between checks for 20 µs at first, then twice as long after each 50
// checks that found nothing to do, up to 10 ms. When every P is idle it
// sleeps on a note instead ("deep sleep"), and the first system call after
// that wakes it and starts it over at 20 µs. A gateway that is not
// saturated goes idle between bursts all the time: under Connection: close
// on one core, sysmon woke about 1,900 times a second instead of about
// 100, each wake-up a nanosleep and a thread switch, and took 7% of
// fastgate's CPU. With schedtrace set, sysmon never deep-sleeps, so it
// stays at its 10 ms once it got there: CPU per request on new
// connections went down by 6-12% (medians of A/B pairs; README,
// Performance).
//
// loadgen, which waits between the open model's arrivals, gained more: at
// 5,000 requests a second its CPU per request went from about 70 to 40 µs
// and its context switches from 4 to 2.4 per request (README,
// Performance).
//
// schedtrace is also the period, in ms, of the scheduler trace sysmon
// prints to standard error; at its largest value (2^31-1 ms, 24.8 days)
// sysmon counts it from the host's boot, so a host up longer than that gets
// one "SCHED" line when the program starts and one every 24.8 days. A fatal
// runtime error adds the scheduler's state to its dump.
//
// The runtime reads GODEBUG only when the process starts and go build
// refuses schedtrace in a //go:debug line, so the program sets it by
// executing itself again with it, once, before it does anything else. A
// GODEBUG that already names schedtrace is left as it is: GODEBUG=
// schedtrace=0 keeps Go's default.
const GODEBUG = "schedtrace=2147483647"

// Tune re-executes the program with GODEBUG added to the environment's
// GODEBUG; it returns only when that already names schedtrace, off Linux,
// or when the exec failed, and then the program runs as it is. Call it
// first in main.
func Tune() {
	if runtime.GOOS != "linux" {
		return
	}
	godebug, env := os.Getenv("GODEBUG"), os.Environ()
	if strings.Contains(godebug, "schedtrace=") {
		return
	}
	if godebug != "" {
		godebug += ","
	}
	godebug += GODEBUG
	kept := env[:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			kept = append(kept, kv)
		}
	}
	// /proc/self/exe is the running binary even when its file has since
	// been replaced.
	syscall.Exec("/proc/self/exe", os.Args, append(kept, "GODEBUG="+godebug)) //nolint:errcheck // it returns only on failure
}
