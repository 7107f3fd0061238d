package stub

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// shutdownTimeout bounds Running.Close's wait for in-flight responses.
const shutdownTimeout = 10 * time.Second

// readBufferSize is the per-connection read buffer, which bounds the request
// line plus headers; larger than fasthttp's 4 KiB default so the stub is not
// the limit when a test sends big headers through the gateway.
const readBufferSize = 16 << 10

// Running is a stub service serving on a listener, returned by Start.
//
// Addr is safe for concurrent use; Close may be called from any goroutine,
// more than once.
type Running struct {
	stub   *Server
	srv    *fasthttp.Server
	ln     net.Listener
	addr   string
	served chan struct{} // closed when Serve returns
	err    error         // Serve's error, read after served is closed

	closeOnce sync.Once
	closeErr  error
}

// Start validates opts, listens on addr (such as "127.0.0.1:0") and serves
// the stub in a goroutine until Close.
func Start(addr string, opts Options) (*Running, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen(network(addr), addr)
	if err != nil {
		return nil, fmt.Errorf("stub: cannot listen on %q: %w; possible solutions: pick a free port, or port 0 for any", addr, err)
	}
	s := New(opts)
	s.addr = dialAddr(ln.Addr())
	r := &Running{
		stub:   s,
		srv:    s.newFastServer(),
		ln:     ln,
		addr:   s.addr,
		served: make(chan struct{}),
	}
	go r.serve()
	return r, nil
}

// newFastServer returns the fasthttp server for s.
func (s *Server) newFastServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               s.Handler,
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		ReadBufferSize:        readBufferSize,
		Logger:                quietLogger{},
	}
}

// serve runs the fasthttp server until the listener closes.
func (r *Running) serve() {
	defer close(r.served)
	r.err = r.srv.Serve(r.ln)
}

// Addr returns the address the stub listens on, "127.0.0.1:PORT" for a
// loopback or unspecified IPv4 listen address. The same value is sent in
// the X-Stub-Addr response header.
func (r *Running) Addr() string {
	return r.addr
}

// Close stops serving: it closes the listener, ends hung connections and
// generated bodies, waits up to 10s for in-flight responses and for the
// serve goroutine. It returns the first error met; later calls return the
// same.
func (r *Running) Close() error {
	r.closeOnce.Do(r.shutdown)
	return r.closeErr
}

// shutdown is Close's one run.
func (r *Running) shutdown() {
	r.stub.stopping.Store(true)
	r.stub.hangs.stop()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := r.srv.ShutdownWithContext(ctx)
	// Serve may not have registered the listener with the server yet, in
	// which case Shutdown did not close it.
	_ = r.ln.Close()
	<-r.served
	r.stub.hangs.wait()
	switch {
	case err != nil:
		r.closeErr = fmt.Errorf("stub: shutdown of %s: %w", r.addr, err)
	case r.err != nil:
		r.closeErr = fmt.Errorf("stub: serving %s: %w", r.addr, r.err)
	}
}

// network is "tcp" for an IPv6 literal host, else "tcp4", so that
// "localhost:0" and ":0" listen on IPv4.
func network(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err == nil && strings.Contains(host, ":") {
		return "tcp"
	}
	return "tcp4"
}

// dialAddr returns a dialable form of a listener address: an unspecified
// IP becomes the loopback of its family.
func dialAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	ip := net.IPv4(127, 0, 0, 1)
	if ta.IP.To4() == nil {
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// validate checks o as documented on its fields.
func (o *Options) validate() error {
	switch o.Demo {
	case "", DemoUsers, DemoOrders, DemoProducts:
	default:
		return fmt.Errorf("stub: unknown Options.Demo %q; want %q, %q, %q or empty", o.Demo, DemoUsers, DemoOrders, DemoProducts)
	}
	if o.Latency < 0 || o.Latency > MaxLatency {
		return fmt.Errorf("stub: Options.Latency %s out of range; want 0s..%s", o.Latency, MaxLatency)
	}
	if o.Status != 0 && (o.Status < 100 || o.Status > 599) {
		return fmt.Errorf("stub: Options.Status %d out of range; want 0 (default %d) or 100..599", o.Status, DefaultStatus)
	}
	if o.Size > MaxSize {
		return fmt.Errorf("stub: Options.Size %d too large; want at most %d (100 GiB)", o.Size, MaxSize)
	}
	return nil
}

// quietLogger drops fasthttp's error log: clients of a stub drop
// connections on purpose (timeouts, hang and reset tests), and those errors
// are noise.
type quietLogger struct{}

// Printf discards the message.
func (quietLogger) Printf(string, ...any) {}

var _ fasthttp.Logger = quietLogger{}
