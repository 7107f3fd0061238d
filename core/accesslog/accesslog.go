// Package accesslog writes access log lines asynchronously through a
// bounded buffer: a request formats its line into one of the Logger's
// preallocated Lines and hands it over without waiting; one goroutine
// writes lines out in batches. When the buffer is full the line is dropped
// and counted, so a slow disk or a blocked stdout never slows requests down.
//
// The package knows nothing of HTTP: the gateway formats the fields (see
// AppendString for JSON strings) and the Logger moves bytes.
package accesslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Line is one log line being formatted. B is appended to by the caller; a
// Line goes back to its Logger's free list when written or dropped.
type Line struct {
	B []byte
}

// lineSize is the room a Line starts with; a longer line grows its buffer
// once and keeps it.
const lineSize = 512

// maxKeptLine keeps an occasional huge line from pinning its memory.
const maxKeptLine = 16 << 10

// Logger writes lines to one destination. Its methods are safe for
// concurrent use; Submit never blocks.
type Logger struct {
	path  string
	lines chan *Line
	// free holds the Lines not in use: a fixed set, so the logger's
	// memory is bounded and a request never allocates one.
	free chan *Line
	done chan struct{}
	// reopen asks the writer to reopen a file destination (log rotation).
	reopen chan struct{}

	written atomic.Uint64
	dropped atomic.Uint64
	errors  atomic.Uint64

	closeOnce sync.Once
	onError   func(error)
}

// Open returns a Logger writing to path: "stdout", "stderr" or a file,
// created if needed and appended to. buffer is how many lines may wait for
// the writer. onError, when not nil, receives write errors (at most one per
// batch).
func Open(path string, buffer int, onError func(error)) (*Logger, error) {
	if buffer <= 0 {
		return nil, fmt.Errorf("accesslog: buffer must be > 0 lines, got %d", buffer)
	}
	w, err := openDest(path)
	if err != nil {
		return nil, err
	}
	l := newLogger(buffer)
	l.path, l.onError = path, onError
	go l.run(w)
	return l, nil
}

func newLogger(buffer int) *Logger {
	l := &Logger{
		lines:  make(chan *Line, buffer),
		free:   make(chan *Line, buffer),
		done:   make(chan struct{}),
		reopen: make(chan struct{}, 1),
	}
	// As many Lines as the queue holds, so Submit always finds room, cut
	// from one slab so that a Line's first use does not allocate either.
	slab := make([]byte, buffer*lineSize)
	for i := range buffer {
		l.free <- &Line{B: slab[i*lineSize : i*lineSize : (i+1)*lineSize]}
	}
	return l
}

// New returns a Logger writing to w (tests, or a destination of the
// caller's). Reopen does nothing for it.
func New(w io.Writer, buffer int) *Logger {
	l := newLogger(buffer)
	go l.run(nopCloser{w})
	return l
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func openDest(path string) (io.WriteCloser, error) {
	switch path {
	case "stdout":
		return nopCloser{os.Stdout}, nil
	case "stderr":
		return nopCloser{os.Stderr}, nil
	case "", "off":
		return nil, errors.New(`accesslog: no destination; want "stdout", "stderr" or a file path`)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("accesslog: %w (does the directory exist and is it writable?)", err)
	}
	return f, nil
}

// Path returns the destination the Logger was opened with.
func (l *Logger) Path() string { return l.path }

// Acquire returns an empty Line to format and pass to Submit, or nil when
// every Line is queued: the buffer is full, and the line is dropped and
// counted without being formatted.
func (l *Logger) Acquire() *Line {
	select {
	case ln := <-l.free:
		ln.B = ln.B[:0]
		return ln
	default:
		l.dropped.Add(1)
		return nil
	}
}

// release returns ln to the free list.
func (l *Logger) release(ln *Line) {
	if cap(ln.B) > maxKeptLine {
		ln.B = nil
	}
	l.free <- ln
}

// Submit queues ln, from Acquire, for writing. It never blocks: the queue
// has room for every Line.
func (l *Logger) Submit(ln *Line) {
	l.lines <- ln
}

// Written returns how many lines were written out.
func (l *Logger) Written() uint64 { return l.written.Load() }

// Dropped returns how many lines were dropped because the buffer was full.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// WriteErrors returns how many batches failed to write.
func (l *Logger) WriteErrors() uint64 { return l.errors.Load() }

// Reopen makes the writer close and reopen a file destination, for log
// rotation (rename the file, then reload). It does not wait.
func (l *Logger) Reopen() {
	select {
	case l.reopen <- struct{}{}:
	default:
	}
}

// Close writes out the queued lines and stops the writer. Submit after
// Close panics; the gateway closes a Logger only when no request can reach
// it any more.
func (l *Logger) Close() {
	l.closeOnce.Do(func() {
		close(l.lines)
		<-l.done
	})
}

// run is the writer: it drains the queue into a buffered writer and flushes
// whenever the queue is empty, so lines reach the destination promptly under
// light load and in large writes under heavy load.
func (l *Logger) run(w io.WriteCloser) {
	defer close(l.done)
	bw := bufio.NewWriterSize(w, 64<<10)
	for {
		select {
		case ln, ok := <-l.lines:
			if !ok {
				l.flush(bw, w)
				w.Close()
				return
			}
			l.write(bw, ln)
			if len(l.lines) == 0 {
				l.flush(bw, w)
			}
		case <-l.reopen:
			l.flush(bw, w)
			if w = l.reopenDest(w); w != nil {
				bw.Reset(w)
			}
		}
	}
}

func (l *Logger) write(bw *bufio.Writer, ln *Line) {
	bw.Write(ln.B) // errors surface at flush
	l.release(ln)
	l.written.Add(1)
}

func (l *Logger) flush(bw *bufio.Writer, w io.Writer) {
	if err := bw.Flush(); err != nil {
		l.errors.Add(1)
		if l.onError != nil {
			l.onError(err)
		}
		// Drop what could not be written rather than retrying forever.
		bw.Reset(w)
	}
}

func (l *Logger) reopenDest(w io.WriteCloser) io.WriteCloser {
	if _, isFile := w.(*os.File); !isFile {
		return w
	}
	nw, err := openDest(l.path)
	if err != nil {
		if l.onError != nil {
			l.onError(err)
		}
		return w
	}
	w.Close()
	return nw
}
