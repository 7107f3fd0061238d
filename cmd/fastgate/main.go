// Command fastgate is the API gateway: flags -> config -> core -> serve ->
// signals -> ordered shutdown. It only wires; the engine is package core.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"fastgate/core"
	"fastgate/core/config"
	"fastgate/examples"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "fastgate: %s\n", err)
		return 2
	}
	if o.version {
		fmt.Fprintf(stdout, "fastgate %s\n", version)
		return 0
	}
	cfg, err := loadConfig(o)
	if o.check {
		return check(cfg, err, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "fastgate: invalid config, not starting:\n%s\n", err)
		return 1
	}
	log, err := newLogger(o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "fastgate: %s\n", err)
		return 2
	}
	if err := serve(o, cfg, log, stdout); err != nil {
		log.Error("fastgate stopped", "error", err)
		return 1
	}
	return 0
}

// loadConfig reads the config (-config, or the embedded demo config with
// -demo), applies the flag defaults and validates it.
func loadConfig(o *options) (*config.Config, error) {
	var cfg *config.Config
	var err error
	switch {
	case o.demo && o.configPath != "":
		return nil, errorf("-demo and -config exclude each other: -demo serves the embedded demo config")
	case o.demo:
		cfg, err = config.ParseChecked(examples.Demo, "yaml", os.LookupEnv, &o.defaults)
	case o.configPath != "":
		cfg, err = config.LoadChecked(o.configPath, &o.defaults)
	default:
		return nil, errorf("no config: run with -config FILE, or -demo for the demo")
	}
	if err != nil {
		return nil, err
	}
	// What Validate cannot see, compiling does.
	snap, err := core.Compile(cfg, &core.Options{})
	if err != nil {
		return nil, err
	}
	snap.Close()
	return cfg, nil
}

// check prints "ok" or every problem, one per line, for -check.
func check(cfg *config.Config, err error, stdout, stderr io.Writer) int {
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d routes, %d upstreams\n", len(cfg.Routes), len(cfg.Upstreams))
	return 0
}

func newLogger(o *options, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, errorf("-log-level %q: want debug, info, warn or error", o.logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	default:
		return nil, errorf("-log-format %q: want text or json", o.logFormat)
	}
}

// serve runs the gateway (and the demo services with -demo) until SIGINT or
// SIGTERM, then drains: the listener stops, in-flight requests finish up to
// -shutdown-timeout, upstream connections close.
func serve(o *options, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	gw, err := core.New(cfg, core.Options{Logger: log, ReusePort: o.reusePort})
	if err != nil {
		return err
	}
	if o.demo {
		stop, err := startDemoServices(cfg, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := gw.Listen()
	if err != nil {
		return fmt.Errorf("listen %s: %w (is another process on it? change `listen:` in the config)", cfg.Listen, err)
	}
	log.Info("fastgate listening", "addr", ln.Addr().String(), "version", version,
		"routes", len(cfg.Routes), "upstreams", len(cfg.Upstreams))
	if o.demo {
		printDemo(stdout, ln.Addr().String())
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- gw.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain_timeout", o.drain.String())
	dctx, dcancel := context.WithTimeout(context.Background(), o.drain.D())
	defer dcancel()
	if err := gw.Shutdown(dctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	return <-errc
}
