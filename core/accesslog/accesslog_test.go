package accesslog

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		got := string(AppendString(nil, []byte(in)))
		if got != want {
			t.Fatalf("AppendString(%q): got %s; want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("AppendString(%q) = %s is not JSON: %s", in, got, err)
		}
	}
	f("", `""`)
	f("/api/users/1", `"/api/users/1"`)
	f(`a"b\c`, `"a\"b\\c"`)
	f("line\nbreak\r\t", `"line\nbreak\r\t"`)
	f("\x00\x1f", `"\u0000\u001f"`)
	f("héllo ☃", `"héllo ☃"`)
	f("bad\xffutf8", `"bad\ufffdutf8"`)
	f(`{"forged":1}`, `"{\"forged\":1}"`)
}

func FuzzAppendString(f *testing.F) {
	f.Add([]byte("a\"b\n\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := AppendString(nil, in)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s is not JSON: %s", in, out, err)
		}
		if bytes.IndexByte(out, '\n') >= 0 {
			t.Fatalf("AppendString(%q) = %s contains a newline", in, out)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func submit(l *Logger, s string) bool {
	ln := l.Acquire()
	if ln == nil {
		return false
	}
	ln.B = append(ln.B, s...)
	l.Submit(ln)
	return true
}

func TestLoggerWritesAll(t *testing.T) {
	var out syncBuffer
	l := New(&out, 64)
	const n = 1000
	var wg sync.WaitGroup
	var queued [4]int
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 4 {
				if submit(l, "x\n") {
					queued[g]++
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	total := queued[0] + queued[1] + queued[2] + queued[3]
	if got := strings.Count(out.String(), "x\n"); got != total {
		t.Fatalf("lines written: got %d; want %d queued", got, total)
	}
	if l.Written()+l.Dropped() != n {
		t.Fatalf("written %d + dropped %d; want %d", l.Written(), l.Dropped(), n)
	}
}

// blockingWriter blocks every write until released, and says when the
// first write has started.
type blockingWriter struct {
	entered chan struct{} // buffered 1: a token once a write has started
	release chan struct{}
}

func newBlockingWriter() *blockingWriter {
	return &blockingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	return len(p), nil
}

func TestLoggerDropsWhenFull(t *testing.T) {
	w := newBlockingWriter()
	l := New(w, 4)
	// The writer takes one line and blocks in its flush; 4 more fill the
	// buffer (the first line's Line is free again once written).
	submit(l, "first\n")
	<-w.entered
	queued := 0
	for range 100 {
		if submit(l, "x\n") {
			queued++
		}
	}
	if queued != 4 || l.Dropped() != 96 {
		t.Fatalf("queued %d, dropped %d; want 4 and 96", queued, l.Dropped())
	}
	close(w.release)
	l.Close()
	if l.Written() != 5 {
		t.Fatalf("written %d; want 5", l.Written())
	}
}

func TestLoggerFileReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	l, err := Open(path, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	submit(l, "one\n")
	waitUntil(t, "line one written", func() bool { return l.Written() == 1 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Reopen()
	// Reopen does not wait. Once the writer has taken the request off
	// l.reopen it reopens before it takes another line, so the next line
	// lands in the new file.
	waitUntil(t, "the writer took the reopen request", func() bool { return len(l.reopen) == 0 })
	submit(l, "two\n")
	l.Close()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if string(old) != "one\n" || string(cur) != "two\n" {
		t.Fatalf("after rotation: old %q, new %q; want \"one\\n\", \"two\\n\"", old, cur)
	}
}

// waitUntil polls cond until it holds; the bound only stops a broken test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestOpenErrors(t *testing.T) {
	f := func(path string, buffer int, want string) {
		t.Helper()
		_, err := Open(path, buffer, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Open(%q, %d): got %v; want an error containing %q", path, buffer, err, want)
		}
	}
	f("off", 1, "no destination")
	f("/nonexistent-dir/x.log", 1, "does the directory exist")
	f("stdout", 0, "buffer must be > 0")
}
