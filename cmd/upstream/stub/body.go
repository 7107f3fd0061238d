package stub

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// patternLine is the period of every generated body: printable, 64 bytes,
// starting with "ok" so that the default 2-byte body reads "ok".
const patternLine = "ok fastgate-stub 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGH\n"

// maxBufferedSize is the largest body served from the preallocated pattern;
// larger bodies are streamed by a generator.
const maxBufferedSize = 64 << 10

// pattern holds patternLine repeated over maxBufferedSize+len(patternLine)
// bytes, so that any window of up to maxBufferedSize bytes starting within
// the first period is contiguous. It is never written after init.
var pattern = newPattern(maxBufferedSize + len(patternLine))

// newPattern returns n bytes of patternLine repeated.
func newPattern(n int) []byte {
	b := make([]byte, 0, n+len(patternLine))
	for len(b) < n {
		b = append(b, patternLine...)
	}
	return b[:n]
}

// errStopping aborts generated bodies when the stub shuts down.
var errStopping = errors.New("stub: server is shutting down; the body was cut short")

// generator is a body stream of a given number of pattern bytes. It is
// pooled: acquireGenerator takes one, and fasthttp's single Close after
// writing the body returns it.
//
// A generator is used by one response at a time.
type generator struct {
	off       int // bytes produced so far
	remaining int // bytes still to produce
	stopping  *atomic.Bool
}

var generatorPool sync.Pool

// acquireGenerator returns a generator of size bytes that fails once
// stopping is set. Close releases it.
func acquireGenerator(size int, stopping *atomic.Bool) *generator {
	g, _ := generatorPool.Get().(*generator)
	if g == nil {
		g = &generator{}
	}
	g.remaining = size
	g.stopping = stopping
	return g
}

// Read fills p with the next pattern bytes, at most maxBufferedSize at a time.
func (g *generator) Read(p []byte) (int, error) {
	if g.remaining <= 0 {
		return 0, io.EOF
	}
	if g.stopping.Load() {
		return 0, errStopping
	}
	start := g.off % len(patternLine)
	n := min(len(p), g.remaining, maxBufferedSize)
	n = copy(p, pattern[start:start+n])
	g.off += n
	g.remaining -= n
	return n, nil
}

// Close returns g to the pool; g must not be used afterwards. A second Close
// is a no-op.
func (g *generator) Close() error {
	if g.stopping == nil {
		return nil
	}
	g.Reset()
	generatorPool.Put(g)
	return nil
}

// Reset clears g for reuse.
func (g *generator) Reset() {
	*g = generator{}
}
