package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// IsTerminal reports whether f is a character device (a terminal), for
// Options.ProgressTTY.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress prints the live progress line until its context ends.
type progress struct {
	wg sync.WaitGroup
}

// Wait waits for the final line.
func (p *progress) Wait() { p.wg.Wait() }

// startProgress starts printing r's progress to opts.Progress.
func startProgress(ctx context.Context, r *runner, opts Options) *progress {
	p := &progress{}
	if opts.Progress == nil {
		return p
	}
	every := 5 * time.Second
	if opts.ProgressTTY {
		every = time.Second
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var prev uint64
		last := r.start
		st := new(Stats) // 60 KiB: reused
		for {
			select {
			case <-ctx.Done():
				if opts.ProgressTTY {
					fmt.Fprint(opts.Progress, "\r\033[K")
				}
				return
			case now := <-t.C:
				st.Reset()
				r.collect(st)
				printProgress(opts.Progress, opts.ProgressTTY, r, st, float64(st.Requests-prev)/now.Sub(last).Seconds(), now)
				prev, last = st.Requests, now
			}
		}
	}()
	return p
}

// printProgress writes one progress line.
func printProgress(w io.Writer, tty bool, r *runner, st *Stats, rps float64, now time.Time) {
	prefix, suffix := "", "\n"
	if tty {
		prefix, suffix = "\r\033[K", ""
	}
	fmt.Fprintf(w, "%s[%5.1fs/%s] %7.0f req/s  total %d  p50 %s  p99 %s  failed %d  dropped %d  vus %d%s",
		prefix, now.Sub(r.start).Seconds(), r.sc.LoadDuration(), rps, st.Requests,
		fmtMs(ms(st.Latency.Quantile(0.5))), fmtMs(ms(st.Latency.Quantile(0.99))),
		st.Failed, st.Dropped+r.dropped.Load(), r.vuCount(), suffix)
}
