package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
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
	targetNginx    = "nginx"
	targetHAProxy  = "haproxy"
)

var allTargets = []string{targetDirect, targetFastgate, targetNginx, targetHAProxy}

// startTimeout bounds a proxy's start.
const startTimeout = 10 * time.Second

// target is one running thing the generator sends to: a proxy, or the
// upstream itself for the direct row.
type target struct {
	name   string
	url    string
	proc   *loadtest.Proc // the process whose CPU time is measured
	owned  bool           // stopped by stop (the direct row shares the upstream)
	config string         // path of the generated config, for the report
}

// stop stops the target's process if it owns it.
func (t *target) stop() {
	if t.owned && t.proc != nil {
		t.proc.Stop(5 * time.Second) //nolint:errcheck // a bench process
	}
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
# X-Request-ID; the others add X-Forwarded-For.
listen: "{{"{{listen}}"}}"
admin: {listen: "off"}
upstreams:
  bench:
    targets: [{url: "{{"{{upstream}}"}}"}]
routes:
  - name: all
    match: {path: "/{rest:*}"}
    upstream: bench
`

// startFastgate starts fastgate with the config template tmpl (the plain
// one when empty) under the given target name.
func (e *env) startFastgate(name, tmpl string) (*target, error) {
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
	p, _, err := e.startProc(name, []string{filepath.Join(e.bin, "fastgate"), "-config", cfg, "-log-level", "warn"},
		[]string{fmt.Sprintf("GOMAXPROCS=%d", e.gomaxprocs)}, "")
	if err != nil {
		return nil, err
	}
	t := &target{name: name, url: "http://" + addr, proc: p, owned: true, config: cfg}
	return t, waitReady(t)
}

// nginxConfig is nginx's config; see its comment.
const nginxConfig = `# nginx, bench target. Equivalent to fastgate.yaml and haproxy.cfg:
# {{.Cores}} worker(s), keep-alive to the upstream (keepalive {{.Conns}}, HTTP/1.1, Connection ""),
# access_log off, error_log and pid file in the temporary directory,
# no limit on requests per connection either side, X-Forwarded-For added.
# /bench/cached/ (the cache-hit workload) is answered from proxy_cache: a
# memory zone, responses kept 1h, concurrent misses collapsed (proxy_cache_lock).
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
            proxy_buffer_size 8k;
            proxy_buffers 16 8k;
        }
        location /bench/cached/ {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
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
# no logging, maxconn well above the generator's {{.Conns}} connections, X-Forwarded-For added.
# /bench/cached/ (the cache-hit workload) goes to a backend answering from
# HAProxy's cache (memory, 64 MB, 1h: HAProxy stores only responses with
# explicit freshness, so the backend gives the stub's answers Cache-Control).
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
    http-response set-header X-Cache HIT if { res.cache_hit }
    default_backend stub
backend stub
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
	t := &target{name: targetNginx, url: "http://" + addr, proc: p, owned: true, config: cfg}
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
	t := &target{name: targetHAProxy, url: "http://" + addr, proc: p, owned: true, config: cfg}
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
		if t.proc.Exited() {
			return fmt.Errorf("bench: %s exited at start (config %s); output:\n%s", t.name, t.config, t.proc.Output())
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
	t.proc.Kill()
	return fmt.Errorf("bench: %s at %s not ready within %s (last: %s); output:\n%s", t.name, t.url, startTimeout, last, t.proc.Output())
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
