// Command upstream runs one stub upstream service (package fastgate/cmd/upstream/stub)
// for integration tests, benchmarks and demos of the gateway.
//
// Once it listens it prints exactly one line to stdout,
//
//	upstream <name> listening on <addr>
//
// with the actual address (so "-listen 127.0.0.1:0" works), then serves until
// SIGINT or SIGTERM, shuts down gracefully and exits 0. Requests shape their
// answers with knobs: see stub.Server.Handler.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"fastgate/cmd/upstream/stub"
)

var (
	listen  = flag.String("listen", "127.0.0.1:9001", "address to listen on; port 0 picks a free port")
	name    = flag.String("name", "upstream", "service name, sent in the X-Stub-Name response header and in JSON bodies")
	demo    = flag.String("demo", "", `demo JSON API to serve: "users", "orders" or "products"; empty for none`)
	latency = flag.Duration("latency", 0, "latency added before every answer, at most 60s; the latency knob overrides it")
	status  = flag.Int("status", stub.DefaultStatus, "status of plain and echo responses, 100..599; the status knob overrides it")
	size    = flag.Int("size", stub.DefaultSize, `body size in bytes of plain responses; the default body is "ok"; the size knob overrides it`)
	echo    = flag.Bool("echo", false, "answer every request with its JSON echo")
	hang    = flag.Bool("hang", false, "never answer any request (accept, read, hold the connection); the hang knob 0 overrides it; GET /_stub/stats still answers")
)

func main() {
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "upstream: unexpected arguments %q; all settings are flags\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	// Signals are caught before the ready line: a caller may stop the
	// process as soon as it reads the line.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	r, err := stub.Start(*listen, options())
	if err != nil {
		fmt.Fprintf(os.Stderr, "upstream: %s\n", err)
		os.Exit(1)
	}
	// os.Stdout is unbuffered: the line is out once Printf returns.
	fmt.Printf("upstream %s listening on %s\n", *name, r.Addr())

	<-sig
	if err := r.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "upstream: %s\n", err)
		os.Exit(1)
	}
}

// options maps the flags to stub.Options.
func options() stub.Options {
	opts := stub.Options{
		Name:    *name,
		Demo:    *demo,
		Latency: *latency,
		Status:  *status,
		Size:    *size,
		Echo:    *echo,
		Hang:    *hang,
	}
	if *size == 0 {
		// -size 0 asks for an empty body, which Options spells negative.
		opts.Size = -1
	}
	return opts
}
