package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/valyala/fasthttp"

	"fastgate/loadtest"
)

// The target names, in table order.
const (
	targetDirect   = "direct"
	targetFastgate = "fastgate"
	// targetReuseport is -cores fastgate processes with GOMAXPROCS=1 sharing
	// the port with SO_REUSEPORT (-reuseport): the other way to spread
	// fastgate over cores, beside one process with GOMAXPROCS=-cores
	// (issue 15). It exists only with -cores > 1: on one core it would be
	// the fastgate row again.
	targetReuseport = "fastgate-reuseport"
	targetNginx     = "nginx"
	targetHAProxy   = "haproxy"
)

var allTargets = []string{targetDirect, targetFastgate, targetReuseport, targetNginx, targetHAProxy,
	targetFloorGoroutine, targetFloorLoop}

// targetsFor returns the default targets of a run with -cores cores, in
// table order: all of them but the floor rows (see floor.go), and
// fastgate-reuseport only with cores > 1.
func targetsFor(cores int) []string {
	return slices.DeleteFunc(slices.Clone(allTargets), func(t string) bool {
		return t == targetReuseport && cores == 1 || isFloor(t)
	})
}

// isFloor reports whether t is a floor row: a minimal Go proxy, not a
// product (floor.go).
func isFloor(t string) bool { return t == targetFloorGoroutine || t == targetFloorLoop }

// startTimeout bounds a proxy's start.
const startTimeout = 10 * time.Second

// target is one running thing the generator sends to: a proxy, or the
// upstream itself for the direct row.
type target struct {
	name string
	url  string
	// procs are the processes whose CPU time is measured, summed: one,
	// or fastgate-reuseport's -cores processes sharing the port.
	procs  []*loadtest.Proc
	owned  bool   // stopped by stop (the direct row shares the upstream)
	config string // path of the generated config, for the report
}

// stop stops the target's processes if it owns them.
func (t *target) stop() {
	if !t.owned {
		return
	}
	for _, p := range t.procs {
		p.Stop(5 * time.Second) //nolint:errcheck // a bench process
	}
}

// cpuTime is CPU time split into user and system (kernel) time.
type cpuTime struct{ user, sys time.Duration }

func (c cpuTime) total() time.Duration { return c.user + c.sys }

func (c cpuTime) sub(d cpuTime) cpuTime { return cpuTime{c.user - d.user, c.sys - d.sys} }

// cpuTime returns the CPU time of t's processes and their children,
// together.
func (t *target) cpuTime() (cpuTime, error) {
	var sum cpuTime
	for _, p := range t.procs {
		u, s, err := loadtest.CPUTimes(p.Pid())
		if err != nil {
			return cpuTime{}, fmt.Errorf("bench: CPU time of %s (pid %d): %w", t.name, p.Pid(), err)
		}
		sum.user += u
		sum.sys += s
	}
	return sum, nil
}

// pids returns the pids of t's processes and their children (nginx's
// workers, say), for perf stat -p.
func (t *target) pids() []int {
	var out []int
	for _, p := range t.procs {
		out = append(out, loadtest.ProcessTree(p.Pid())...)
	}
	return out
}

// env is the shared setup of the targets.
type env struct {
	dir        string // temporary directory: configs, logs, pid files
	bin        string // fastgate, upstream, loadgen
	upstream   string // "127.0.0.1:PORT" of the stub
	gomaxprocs int
	cores      int // nginx workers, HAProxy threads
	conns      int
	pin        bool
}

// pinned prefixes argv with `taskset -c cpu` when pinning is on.
func (e *env) pinned(cpu string, argv []string) []string {
	if !e.pin {
		return argv
	}
	return append([]string{"taskset", "-c", cpu}, argv...)
}

// startProc starts argv, pinned to the proxy core when -pin is on.
func (e *env) startProc(name string, argv []string, envv []string, ready string) (*loadtest.Proc, string, error) {
	argv = e.pinned("0", argv)
	return loadtest.StartProc(name, argv[0], argv[1:], envv, ready, startTimeout)
}

// startUpstream starts the stub upstream with 100-byte bodies.
func (e *env) startUpstream() (*loadtest.Proc, error) {
	p, addr, err := loadtest.StartProc("upstream", filepath.Join(e.bin, "upstream"),
		[]string{"-listen", "127.0.0.1:0", "-name", "bench", "-size", "100"}, nil, "upstream ", startTimeout)
	if err != nil {
		return nil, err
	}
	e.upstream = addr
	return p, nil
}

// fastgateConfig is the plain fastgate config: one upstream, one catch-all
// route; pool size as the other proxies' keep-alive pools.
const fastgateConfig = `# fastgate, bench target. Equivalent to nginx.conf and haproxy.cfg beside it:
# one catch-all route to the stub upstream over keep-alive connections,
# access log off (the default), no admin listener, GOMAXPROCS={{.GOMAXPROCS}} (as many
# cores as nginx's workers and HAProxy's threads, {{.Cores}}). fastgate always
# counts its Prometheus metrics and adds X-Forwarded-For, X-Real-IP and
# X-Request-ID; the others add X-Forwarded-For. Requests beyond the pool's
# 512 connections wait for one (max_conn_wait_timeout) instead of a 503, as
# nginx and HAProxy queue them: the open-model phase can get there.
listen: "{{"{{listen}}"}}"
admin: {listen: "off"}
upstreams:
  bench:
    targets: [{url: "{{"{{upstream}}"}}"}]
    pool: {max_conn_wait_timeout: 30s}
routes:
  - name: all
    match: {path: "/{rest:*}"}
    upstream: bench
`

// startFastgate starts fastgate with the config template tmpl (the plain
// one when empty) under the given target name: one process with
// GOMAXPROCS=-gomaxprocs or, with reuseport, -cores processes with
// GOMAXPROCS=1 on the same address with -reuseport. Each of these has its
// own state: a response cache, rate limiter and metrics per process.
func (e *env) startFastgate(name, tmpl string, reuseport bool) (*target, error) {
	if tmpl == "" {
		var err error
		if tmpl, err = render(fastgateConfig, e); err != nil {
			return nil, err
		}
	}
	addr, err := loadtest.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(e.dir, name+".yaml")
	body := loadtest.Expand(tmpl, map[string]string{"listen": addr, "upstream": "http://" + e.upstream})
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return nil, err
	}
	argv := []string{filepath.Join(e.bin, "fastgate"), "-config", cfg, "-log-level", "warn"}
	n, gomaxprocs := 1, e.gomaxprocs
	if reuseport {
		argv = append(argv, "-reuseport")
		n, gomaxprocs = e.cores, 1
	}
	t := &target{name: name, url: "http://" + addr, owned: true, config: cfg}
	for i := range n {
		pname := name
		if reuseport {
			pname = fmt.Sprintf("%s[%d]", name, i+1)
		}
		p, _, err := e.startProc(pname, argv, []string{"GOMAXPROCS=" + strconv.Itoa(gomaxprocs)}, "")
		if err != nil {
			t.stop()
			return nil, err
		}
		t.procs = append(t.procs, p)
		if reuseport {
			// A connect succeeds once any process listens, so waitReady
			// alone would not see the later ones: each must listen
			// before the next starts, all before the first run.
			if err := waitListening(t, p, addr); err != nil {
				t.stop()
				return nil, err
			}
		}
	}
	if err := waitReady(t); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// What fastgate does to every proxied request and response by default,
// and cannot be told not to (README, "What the proxy does to a request"):
// X-Forwarded-For, X-Real-IP, X-Forwarded-Proto and X-Forwarded-Host sent
// upstream, a request ID generated, sent upstream and returned, and
// X-Content-Type-Options: nosniff on the response. nginx and HAProxy do the
// same in every location and frontend, so that each row measures the same
// work (TestSameHeaderWork). Before, they added only X-Forwarded-For: that
// cost nginx 8% and HAProxy 5% less CPU per small GET (README, Performance).
const nginxGatewayHeaders = `proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Request-Id $request_id;
            add_header X-Request-Id $request_id always;
            add_header X-Content-Type-Options nosniff always;`

// haproxyGatewayHeaders is nginxGatewayHeaders for HAProxy's frontend.
const haproxyGatewayHeaders = `unique-id-format %[uuid()]
    unique-id-header X-Request-Id
    http-request set-header X-Real-IP %[src]
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-response set-header X-Request-Id %[unique-id]
    http-response set-header X-Content-Type-Options nosniff`

// nginxConfig is nginx's config; see its comment.
const nginxConfig = `# nginx, bench target. Equivalent to fastgate.yaml and haproxy.cfg:
# {{.Cores}} worker(s), keep-alive to the upstream (keepalive {{.Conns}}, HTTP/1.1, Connection ""),
# access_log off, error_log and pid file in the temporary directory,
# no limit on requests per connection either side, X-Forwarded-For added,
# and what fastgate adds to every request and response (X-Real-IP,
# X-Forwarded-Proto and -Host, a request ID sent up and returned, nosniff).
# /bench/cached/ (the cache-hit workload) is answered from proxy_cache: a
# memory zone, responses kept 1h, concurrent misses collapsed (proxy_cache_lock).
# /api/users/{id} (the fastgate-features workload) runs the chain of
# features.yaml: the API key looked up (map), 401 without a known one, the
# key stripped and the consumer and its groups sent, a per-consumer
# limit_req that never rejects, the path rewritten to /users/{id}.
# Run: nginx -p {{.Dir}} -c nginx.conf -e {{.Dir}}/nginx-error.log -g 'daemon off;'
{{if .User}}user {{.User}} {{.Group}};
{{end}}worker_processes {{.Cores}};
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/nginx-error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path {{.Dir}}/nginx-client-body;
    proxy_temp_path {{.Dir}}/nginx-proxy;
    fastcgi_temp_path {{.Dir}}/nginx-fastcgi;
    uwsgi_temp_path {{.Dir}}/nginx-uwsgi;
    scgi_temp_path {{.Dir}}/nginx-scgi;
    proxy_cache_path {{.Dir}}/nginx-cache keys_zone=bench:10m max_size=64m inactive=1h use_temp_path=off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    map $http_x_api_key $bench_consumer {
        default "";
        "bench-api-key-0123456789abcdef" bench;
    }
    map $bench_consumer $bench_groups {
        default "";
        bench bench;
    }
    limit_req_zone $bench_consumer zone=perconsumer:1m rate=10000000r/s;
    upstream backend {
        server {{.Upstream}};
        keepalive {{.Conns}};
        keepalive_requests 10000000;
    }
    server {
        listen {{.Listen}};
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            ` + nginxGatewayHeaders + `
            proxy_buffer_size 8k;
            proxy_buffers 16 8k;
        }
        location ~ ^/api/users/(?<uid>[^/]+)$ {
            if ($bench_consumer = "") { return 401; }
            limit_req zone=perconsumer burst=1000000 nodelay;
            proxy_pass http://backend/users/$uid;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            ` + nginxGatewayHeaders + `
            proxy_set_header X-API-Key "";
            proxy_set_header X-Consumer $bench_consumer;
            proxy_set_header X-Consumer-Groups $bench_groups;
            proxy_buffer_size 8k;
            proxy_buffers 16 8k;
        }
        location /bench/cached/ {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            ` + nginxGatewayHeaders + `
            proxy_buffer_size 8k;
            proxy_buffers 16 8k;
            proxy_cache bench;
            proxy_cache_valid 200 1h;
            proxy_cache_lock on;
            add_header X-Cache $upstream_cache_status;
        }
    }
}
`

// haproxyConfig is HAProxy's config; see its comment.
const haproxyConfig = `# HAProxy, bench target. Equivalent to fastgate.yaml and nginx.conf:
# nbthread {{.Cores}}, keep-alive to the upstream shared by all clients (http-reuse always),
# no logging, maxconn well above the generator's {{.Conns}} connections, X-Forwarded-For added,
# and what fastgate adds to every request and response (X-Real-IP,
# X-Forwarded-Proto and -Host, a request ID sent up and returned, nosniff).
# /bench/cached/ (the cache-hit workload) goes to a backend answering from
# HAProxy's cache (memory, 64 MB, 1h: HAProxy stores only responses with
# explicit freshness, so the backend gives the stub's answers Cache-Control).
# /api/users/ (the fastgate-features workload) goes to a backend running the
# chain of features.yaml: 401 without the API key, the key tracked in a
# stick-table with a per-key request-rate limit that never rejects, the key
# stripped and the consumer and its groups sent, the path rewritten to
# /users/{id}.
# Run: haproxy -f haproxy.cfg -db
global
    nbthread {{.Cores}}
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 75s
    option http-keep-alive
    option forwardfor
    http-reuse always
cache bench
    total-max-size 64
    max-object-size 65536
    max-age 3600
frontend bench
    bind {{.Listen}}
    use_backend stub_cached if { path_beg /bench/cached/ }
    use_backend stub_chain if { path_beg /api/users/ }
    http-response set-header X-Cache HIT if { res.cache_hit }
    ` + haproxyGatewayHeaders + `
    default_backend stub
backend stub
    server stub {{.Upstream}}
backend stub_chain
    stick-table type string len 64 size 100k expire 10s store http_req_rate(1s)
    http-request return status 401 unless { req.hdr(x-api-key) -m str bench-api-key-0123456789abcdef }
    http-request track-sc0 req.hdr(x-api-key)
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 10000000 }
    http-request del-header x-api-key
    http-request set-header X-Consumer bench
    http-request set-header X-Consumer-Groups bench
    http-request set-path %[path,regsub(^/api/users/,/users/)]
    server stub {{.Upstream}}
backend stub_cached
    http-request cache-use bench
    http-response set-header Cache-Control "max-age=3600"
    http-response cache-store bench
    server stub {{.Upstream}}
`

// tmplData is what the config templates see.
type tmplData struct {
	Dir, Listen, Upstream, User, Group string
	Conns, GOMAXPROCS, Cores           int
}

// render executes a config template for e with listen address listen.
func render(text string, e *env, listen ...string) (string, error) {
	d := tmplData{Dir: e.dir, Upstream: e.upstream, Conns: e.conns, GOMAXPROCS: e.gomaxprocs, Cores: max(e.cores, 1)}
	if len(listen) > 0 {
		d.Listen = listen[0]
	}
	if os.Geteuid() == 0 {
		// As root nginx would switch its worker to "nobody"; keep the
		// current user like the other processes.
		if u, err := user.Current(); err == nil {
			d.User = u.Username
			if g, err := user.LookupGroupId(u.Gid); err == nil {
				d.Group = g.Name
			}
		}
	}
	var b strings.Builder
	if err := template.Must(template.New("cfg").Parse(text)).Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// startNginx starts nginx with one worker.
func (e *env) startNginx(bin string) (*target, error) {
	addr, err := loadtest.FreeAddr()
	if err != nil {
		return nil, err
	}
	conf, err := render(nginxConfig, e, addr)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(e.dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	os.MkdirAll(filepath.Join(e.dir, "logs"), 0o755) //nolint:errcheck // nginx says if it matters
	p, _, err := e.startProc("nginx", []string{bin, "-p", e.dir, "-c", cfg, "-e", filepath.Join(e.dir, "nginx-error.log"),
		"-g", "daemon off;"}, nil, "")
	if err != nil {
		return nil, err
	}
	t := &target{name: targetNginx, url: "http://" + addr, procs: []*loadtest.Proc{p}, owned: true, config: cfg}
	return t, waitReady(t)
}

// startHAProxy starts HAProxy with one thread.
func (e *env) startHAProxy(bin string) (*target, error) {
	addr, err := loadtest.FreeAddr()
	if err != nil {
		return nil, err
	}
	conf, err := render(haproxyConfig, e, addr)
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(e.dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, _, err := e.startProc("haproxy", []string{bin, "-f", cfg, "-db"}, nil, "")
	if err != nil {
		return nil, err
	}
	t := &target{name: targetHAProxy, url: "http://" + addr, procs: []*loadtest.Proc{p}, owned: true, config: cfg}
	return t, waitReady(t)
}

// waitReady polls the target until it answers 200.
func waitReady(t *target) error {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	deadline := time.Now().Add(startTimeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if err := t.exitedAtStart(); err != nil {
			return err
		}
		req.SetRequestURI(t.url + "/")
		err := fasthttp.DoTimeout(req, resp, time.Second)
		if err == nil && resp.StatusCode() == 200 {
			return nil
		}
		last = fmt.Sprint(err)
		if err == nil {
			last = fmt.Sprintf("status %d", resp.StatusCode())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range t.procs {
		p.Kill()
	}
	return fmt.Errorf("bench: %s at %s not ready within %s (last: %s); output:\n%s", t.name, t.url, startTimeout, last, t.procs[0].Output())
}

// exitedAtStart returns an error naming the first of t's processes that
// has exited, nil while all run.
func (t *target) exitedAtStart() error {
	for _, p := range t.procs {
		if p.Exited() {
			return fmt.Errorf("bench: %s exited at start (config %s); output:\n%s", p.Name, t.config, p.Output())
		}
	}
	return nil
}

// waitListening polls until p, one of t's processes, holds a socket
// listening on addr.
func waitListening(t *target, p *loadtest.Proc, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bench: %s: %w", t.name, err)
	}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		if err := t.exitedAtStart(); err != nil {
			return err
		}
		ok, err := listens(p.Pid(), port)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", p.Name, err)
		}
		if ok {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("bench: %s (pid %d) not listening on %s within %s; output:\n%s", p.Name, p.Pid(), addr, startTimeout, p.Output())
}

// listens reports whether process pid holds a TCP socket listening on
// port: the LISTEN sockets on the port from /proc/PID/net/tcp{,6}, by
// inode, matched against the links of /proc/PID/fd ("socket:[INODE]").
func listens(pid int, port string) (bool, error) {
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return false, fmt.Errorf("port %q: %w", port, err)
	}
	suffix := fmt.Sprintf(":%04X", n) // local_address is HEXIP:HEXPORT
	var sockets []string
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/" + f)
		if err != nil {
			continue // no tcp6 without IPv6
		}
		for _, line := range strings.Split(string(b), "\n") {
			// sl local_address rem_address st ... inode (10th); st 0A is LISTEN
			fs := strings.Fields(line)
			if len(fs) > 9 && fs[3] == "0A" && strings.HasSuffix(fs[1], suffix) {
				sockets = append(sockets, "socket:["+fs[9]+"]")
			}
		}
	}
	if len(sockets) == 0 {
		return false, nil
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && slices.Contains(sockets, l) {
			return true, nil
		}
	}
	return false, nil
}

// findProxy returns the path of nginx or haproxy, installing the package
// with apt-get when missing, allowed and running as root; "" when absent.
func findProxy(name string, install bool, logf func(string, ...any)) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	if !install || os.Geteuid() != 0 {
		logf("%s not installed: its rows are skipped (as root: apt-get install -y %s)", name, aptPackages(name)[0])
		return ""
	}
	updated := false
	for _, pkg := range aptPackages(name) {
		logf("installing %s: apt-get install -y %s", name, pkg)
		cmd := exec.Command("apt-get", "install", "-y", "-qq", pkg)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil && !updated {
			updated = true
			if exec.Command("apt-get", "update", "-qq").Run() == nil {
				out, err = cmd.CombinedOutput()
			}
		}
		if err == nil {
			break
		}
		logf("apt-get install %s: %s\n%s", pkg, err, out)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	logf("%s could not be installed: its rows are skipped", name)
	return ""
}

// aptPackages are the Debian packages providing the binary, in order of
// preference (nginx-light is gone from newer releases).
func aptPackages(name string) []string {
	if name == "nginx" {
		return []string{"nginx-light", "nginx"}
	}
	return []string{name}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// versionOf returns the first line of `bin args...` (stdout or stderr).
func versionOf(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
