// Command fastgate is the API gateway: flags -> config -> core -> serve ->
// signals -> ordered shutdown. It only wires; the engine is package core.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"fastgate/core"
	"fastgate/core/admin"
	"fastgate/core/config"
	"fastgate/core/discovery"
	"fastgate/core/reload"
	"fastgate/core/sysmon"
	"fastgate/examples"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	sysmon.Tune()
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
		cfg, err = config.ParseChecked(examples.Demo, "yaml", demoLookupEnv, &o.defaults)
	case o.etcdURL != nil:
		// The value last read or watched: a reload applies what the watch saw.
		if o.etcd == nil {
			if o.etcd, err = reload.NewEtcd(*o.etcdURL); err != nil {
				return nil, err
			}
		}
		cfg, err = o.etcd.Load(&o.defaults)
	case o.configPath != "":
		cfg, err = config.LoadChecked(o.configPath, &o.defaults)
	default:
		return nil, errorf("no config: run with -config FILE, or -demo for the demo")
	}
	if err != nil {
		return nil, err
	}
	if o.listen != "" {
		cfg.Listen = o.listen
	}
	// What Validate cannot see, compiling does.
	feats, _, cleanup := features(slog.Default())
	defer cleanup()
	snap, err := core.Compile(cfg, &feats)
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
// SIGTERM, reloading on SIGHUP, POST /reload and config file changes, then
// drains: /readyz turns 503, after -drain-delay the listener stops, in-flight
// requests finish up to server.drain_timeout, connections close.
func serve(o *options, cfg *config.Config, log *slog.Logger, stdout io.Writer) error {
	feats, store, cleanup := features(log)
	defer cleanup() // after drain: the Redis client outlives the gateway
	feats.Logger, feats.ReusePort = log, o.reusePort
	// Discovery applies to the gateway, and each reload syncs discovery:
	// bound late, safe since only reloads, started below, call OnApply.
	var disc *discovery.Manager
	feats.OnApply = func(c *config.Config) { disc.Sync(c) }
	gw, err := core.New(cfg, feats)
	if err != nil {
		return err
	}
	disc = discovery.NewManager(gw, log, gw.Metrics().Set(), nil)
	defer disc.Close() // after drain
	disc.Sync(cfg)
	if o.demo {
		stop, err := startDemoServices(cfg, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	// Signals are caught before any port opens: a SIGHUP sent as soon as
	// the gateway accepts connections must reload, not kill it.
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// Discovered upstreams get their first answer before the port opens,
	// within a bound: a dead resolver must not hold the start.
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	if err := disc.WaitReady(wctx); err != nil {
		log.Warn("serving before every discovery source answered; their upstreams use their listed targets meanwhile", "error", err.Error())
	}
	wcancel()
	var reloader *reload.Reloader
	if !o.demo {
		reloader = reload.New(gw, func() (*config.Config, error) { return loadConfig(o) }, log)
		if o.etcd != nil {
			o.etcd.Watch(ctx, reloader, o.node(cfg.Listen), log)
			defer o.etcd.Close()
		}
	}
	errc := make(chan error, 3)
	// The admin API opens before the gateway's port, so a client that
	// reaches the gateway finds /readyz and /metrics too.
	var adminSrv *admin.Server
	if cfg.Admin.Listen != config.AdminOff {
		var reloadFn admin.ReloadFunc
		if reloader != nil {
			reloadFn = reloader.Reload
		}
		adminSrv, err = startAdmin(gw, cfg.Admin.Listen, reloadFn, store.Purge, log, errc)
		if err != nil {
			return err
		}
	}
	closeAdmin := func() {
		if adminSrv != nil {
			actx, acancel := context.WithTimeout(context.Background(), time.Second)
			defer acancel()
			adminSrv.Shutdown(actx) //nolint:errcheck
		}
	}
	ln, err := gw.Listen()
	if err != nil {
		closeAdmin()
		return fmt.Errorf("listen %s: %w (is another process on it? change `listen:` in the config)", cfg.Listen, err)
	}
	if cfg.TLS.RedirectListen != "" {
		rln, err := net.Listen("tcp", cfg.TLS.RedirectListen)
		if err != nil {
			ln.Close()
			closeAdmin()
			return fmt.Errorf("tls.redirect_listen %s: %w", cfg.TLS.RedirectListen, err)
		}
		go func() { errc <- gw.ServeRedirect(rln) }()
	}
	go reloadOnSIGHUP(ctx, hup, reloader, log)
	if reloader != nil && o.watch {
		if err := reloader.Watch(ctx, o.configPath, 300*time.Millisecond); err != nil {
			log.Warn("config file not watched; reload with SIGHUP or POST /reload", "path", o.configPath, "error", err)
		}
	}
	log.Info("fastgate listening", "addr", ln.Addr().String(), "tls", cfg.TLS.Enabled(), "admin", cfg.Admin.Listen,
		"version", version, "routes", len(cfg.Routes), "upstreams", len(cfg.Upstreams))
	if o.demo {
		printDemo(stdout, ln.Addr().String(), cfg)
	}
	go func() { errc <- gw.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	return drain(gw, adminSrv, o, log)
}

// startAdmin listens on the admin address and serves the admin API.
func startAdmin(gw *core.Gateway, addr string, reloadFn admin.ReloadFunc, purge admin.PurgeFunc, log *slog.Logger, errc chan<- error) (*admin.Server, error) {
	aln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin.listen %s: %w (is another fastgate running? set admin.listen or -admin-listen, or \"off\")", addr, err)
	}
	srv := admin.New(gw, reloadFn, purge, log)
	go func() { errc <- srv.Serve(aln) }()
	return srv, nil
}

// reloadOnSIGHUP reloads the config on every SIGHUP on hup until ctx
// ends; without a reloader (-demo) a SIGHUP is logged and ignored.
func reloadOnSIGHUP(ctx context.Context, hup <-chan os.Signal, r *reload.Reloader, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if r == nil {
				log.Info("SIGHUP ignored: -demo serves the embedded config, which does not change")
				continue
			}
			r.Reload("signal") //nolint:errcheck // logged and counted by Reload
		}
	}
}

// drain stops the gateway in order: not ready, (delay), stop accepting and
// finish in-flight requests within the drain timeout, then the admin API.
func drain(gw *core.Gateway, adminSrv *admin.Server, o *options, log *slog.Logger) error {
	timeout := gw.Snapshot().Config().Server.DrainTimeout.D()
	log.Info("draining", "delay", o.drainDelay.String(), "timeout", timeout.String())
	gw.Drain()
	time.Sleep(o.drainDelay.D())
	dctx, dcancel := context.WithTimeout(context.Background(), timeout)
	defer dcancel()
	err := gw.Shutdown(dctx)
	if adminSrv != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		defer acancel()
		adminSrv.Shutdown(actx) //nolint:errcheck
	}
	if err != nil {
		return fmt.Errorf("drain: %w (requests still running after server.drain_timeout %s)", err, timeout)
	}
	log.Info("stopped")
	return nil
}
