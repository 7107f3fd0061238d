package main

import (
	"flag"
	"io"
	"net"
	"os"

	"fastgate/core/config"
	"fastgate/core/reload"
)

// options are the command line. Tuning flags start at the built-in defaults
// and become the defaults a config file may override (config > flag >
// built-in).
type options struct {
	configPath string
	// etcdURL is -config as an etcd key (etcd://...); etcd its client,
	// made by the first loadConfig.
	etcdURL    *reload.EtcdURL
	etcd       *reload.Etcd
	nodeName   string
	listen     string
	demo       bool
	check      bool
	version    bool
	logLevel   string
	logFormat  string
	reusePort  bool
	watch      bool
	drainDelay config.Duration
	defaults   config.Defaults
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{defaults: config.BuiltinDefaults()}
	fs := flag.NewFlagSet("fastgate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.configPath, "config", "", "config file (YAML or JSON by extension), or an etcd key holding the config, etcd://host:2379[,host2:2379]/fastgate/config, watched and applied on every change")
	fs.StringVar(&o.nodeName, "node-name", "", "this node's name in the status it writes under <key>/status/<node> with -config etcd://...; default hostname@listen")
	fs.StringVar(&o.listen, "listen", "", "listen address; overrides the config's listen (nodes sharing one config from etcd listen on their own ports)")
	fs.BoolVar(&o.demo, "demo", false, "serve the embedded demo config with in-process demo services (what `make run` does)")
	fs.BoolVar(&o.check, "check", false, "validate the config, print every problem with its path, and exit (0: ok, 1: problems)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&o.reusePort, "reuseport", false, "listen with SO_REUSEPORT so several fastgate processes can share the port")
	fs.BoolVar(&o.watch, "watch", true, "reload when the -config file changes (SIGHUP and POST /reload always work)")
	fs.Var(&o.drainDelay, "drain-delay", "on SIGTERM/SIGINT, keep serving this long with /readyz at 503 before closing the listener, so load balancers stop sending first")
	fs.StringVar(&o.defaults.Admin.Listen, "admin-listen", config.DefaultAdminListen, `admin.listen: admin API address, or "off"`)
	fs.StringVar(&o.defaults.AccessLog.Path, "access-log", config.AccessLogOff, `access_log.path: "off", "stdout", "stderr" or a file`)

	s := &o.defaults.Server
	fs.Var(&s.ReadTimeout, "server-read-timeout", "server.read_timeout: max time to read a request")
	fs.Var(&s.WriteTimeout, "server-write-timeout", "server.write_timeout: max time to write a response")
	fs.Var(&s.IdleTimeout, "server-idle-timeout", "server.idle_timeout: close keep-alive connections idle this long")
	fs.Var(&s.MaxRequestBody, "server-max-request-body", "server.max_request_body: larger request bodies get 413")
	fs.Var(&s.MaxHeaderBytes, "server-read-buffer-size", "server.max_header_bytes: per-connection read buffer; caps the request headers (431 beyond)")
	fs.IntVar(&s.Concurrency, "server-concurrency", s.Concurrency, "server.concurrency: max connections served at once")
	fs.IntVar(&s.MaxConnsPerIP, "server-max-conns-per-ip", s.MaxConnsPerIP, "server.max_conns_per_ip: 0 is unlimited")
	fs.IntVar(&s.MaxRequestsPerConn, "server-max-requests-per-conn", s.MaxRequestsPerConn, "server.max_requests_per_conn: 0 is unlimited")
	fs.Var(&s.DrainTimeout, "drain-timeout", "server.drain_timeout: on SIGTERM/SIGINT, how long in-flight requests may take to finish")
	fs.Var(&s.DrainTimeout, "shutdown-timeout", "alias of -drain-timeout")

	p := &o.defaults.Pool
	fs.IntVar(&p.MaxConns, "upstream-max-conns", p.MaxConns, "pool.max_conns: max connections to one target")
	fs.Var(&p.MaxIdleConnDuration, "upstream-max-idle-conn-duration", "pool.max_idle_conn_duration: close pooled connections idle this long")
	fs.Var(&p.MaxConnWaitTimeout, "upstream-max-conn-wait-timeout", "pool.max_conn_wait_timeout: wait this long for a free connection before 503 (0: no wait)")
	fs.Var(&p.ReadBufferSize, "upstream-read-buffer-size", "pool.read_buffer_size: per-connection read buffer; caps upstream response headers")
	fs.Var(&p.WriteBufferSize, "upstream-write-buffer-size", "pool.write_buffer_size: per-connection write buffer")
	fs.Var(&p.MaxBufferedBody, "upstream-max-buffered-body", "pool.max_buffered_body: longer (or chunked) response bodies are streamed")
	fs.Var(&p.MaxResponseBody, "upstream-max-response-body", "pool.max_response_body: longer response bodies fail with 502 (0: unlimited)")

	t := &o.defaults.Timeouts
	fs.Var(&t.Connect, "upstream-connect-timeout", "timeouts.connect: max time to connect to a target")
	fs.Var(&t.Request, "upstream-request-timeout", "timeouts.request: max time for the upstream exchange of one request")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, errorf("unexpected argument %q; flags start with '-' (see -help)", fs.Arg(0))
	}
	if o.listen != "" {
		if _, _, err := net.SplitHostPort(o.listen); err != nil {
			return nil, errorf("-listen %q: want host:port or :port, such as 127.0.0.1:8080", o.listen)
		}
	}
	if reload.IsEtcdURL(o.configPath) {
		u, err := reload.ParseEtcdURL(o.configPath)
		if err != nil {
			return nil, errorf("-config: %s", err)
		}
		// The key is always watched; -watch is about files.
		o.etcdURL, o.watch = &u, false
	}
	return o, nil
}

// node returns this node's name for etcd status keys: -node-name, or
// hostname@listen.
func (o *options) node(listen string) string {
	if o.nodeName != "" {
		return o.nodeName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "fastgate"
	}
	return host + "@" + listen
}
