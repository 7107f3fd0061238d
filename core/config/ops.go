package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
)

// Admin is the operations listener (README "Admin API"). Everything but
// /healthz, /readyz and /metrics needs the bearer token when one is set.
type Admin struct {
	// Listen is the admin address, "host:port", or "off" for none.
	// Default "127.0.0.1:9901" (-admin-listen). Keep it on loopback or a
	// private network: it can reload the config.
	Listen string `json:"listen" yaml:"listen"`

	// Token is the bearer token the admin API requires ("Authorization:
	// Bearer TOKEN"), compared in constant time. Default "": no token, which
	// is allowed only on a loopback Listen. Put it in the environment:
	// token: "${FASTGATE_ADMIN_TOKEN}". It is redacted from GET /config.
	Token string `json:"token" yaml:"token"`
}

// AdminOff is the Admin.Listen (and AccessLog.Path) value that turns it off.
const AdminOff = "off"

// AccessLog configures the access log: one JSON line per request with
// time, request_id, client_ip, method, host, path, route, upstream, target,
// status, bytes_in, bytes_out, duration_ms, upstream_duration_ms and
// user_agent. Authorization, Cookie and API key values are never written.
type AccessLog struct {
	// Path is "off", "stdout", "stderr" or a file path (appended to, and
	// reopened on every reload so log rotation works). Default "off"
	// (-access-log).
	Path string `json:"path" yaml:"path"`

	// Sample is the share of requests logged, from 0 (exclusive) to 1.
	// Default 1: every request. To log none, set path: off.
	Sample float64 `json:"sample" yaml:"sample"`

	// Buffer is how many lines may wait for the writer. When it is full,
	// lines are dropped and counted (fastgate_access_log_dropped_total);
	// requests never wait for the log. Default 8192.
	Buffer int `json:"buffer" yaml:"buffer"`
}

// Access log paths with a meaning of their own.
const (
	AccessLogOff    = "off"
	AccessLogStdout = "stdout"
	AccessLogStderr = "stderr"
)

// TLS terminates TLS on the listener. Certificates are re-read on every
// reload; turning TLS on or off needs a restart.
type TLS struct {
	// Certs are the certificate/key pairs (PEM files). The one served is
	// chosen by SNI among the names of each certificate (exact, then
	// "*.example.com" wildcards); a client without SNI, or with an unknown
	// name, gets the first. Empty: plain HTTP.
	Certs []Cert `json:"certs" yaml:"certs"`

	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3".
	// Default "1.2".
	MinVersion string `json:"min_version" yaml:"min_version"`

	// RedirectListen, when set, is an extra plain-HTTP listener ("host:port")
	// that answers every request with a 308 redirect to the same URL on
	// https. Default "": none.
	RedirectListen string `json:"redirect_listen" yaml:"redirect_listen"`
}

// Cert is one certificate and its private key, PEM files.
type Cert struct {
	// Cert is the certificate chain file, leaf first.
	Cert string `json:"cert" yaml:"cert"`
	// Key is the private key file.
	Key string `json:"key" yaml:"key"`
}

// Enabled reports whether the listener terminates TLS.
func (t *TLS) Enabled() bool { return len(t.Certs) > 0 }

// DefaultAdminListen is the admin address of a config that sets none.
const DefaultAdminListen = "127.0.0.1:9901"

// DefaultAccessLogBuffer is AccessLog.Buffer's default.
const DefaultAccessLogBuffer = 8192

func (a *Admin) setDefaults(d *Admin) {
	setZero(&a.Listen, d.Listen)
	setZero(&a.Listen, DefaultAdminListen)
}

func (l *AccessLog) setDefaults(d *AccessLog) {
	setZero(&l.Path, d.Path)
	setZero(&l.Path, AccessLogOff)
	setZero(&l.Sample, 1)
	setZero(&l.Buffer, DefaultAccessLogBuffer)
}

func (t *TLS) setDefaults() {
	setZero(&t.MinVersion, "1.2")
}

func validateAdmin(errs *Errors, path string, a *Admin) {
	if a.Listen == AdminOff {
		return
	}
	n := len(*errs)
	validateAddr(errs, path+".listen", a.Listen)
	if len(*errs) == n && a.Token == "" && !isLoopbackAddr(a.Listen) {
		errs.add(path+".token", fmt.Sprintf(`is empty while admin.listen %q is not loopback; anyone who reaches it could reload the config. Set token: "${FASTGATE_ADMIN_TOKEN}", or listen on 127.0.0.1`, a.Listen))
	}
}

// isLoopbackAddr reports whether "host:port" names a loopback host.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func validateAccessLog(errs *Errors, path string, l *AccessLog) {
	if l.Path == "" {
		errs.add(path+".path", `must be "off", "stdout", "stderr" or a file path`)
	}
	if !(l.Sample > 0 && l.Sample <= 1) {
		errs.add(path+".sample", fmt.Sprintf("must be > 0 and <= 1 (the share of requests logged), got %g; to log none, set path: off", l.Sample))
	}
	if l.Buffer <= 0 {
		errs.add(path+".buffer", fmt.Sprintf("must be > 0 lines, got %d", l.Buffer))
	}
}

func validateTLS(errs *Errors, path string, t *TLS) {
	for i, c := range t.Certs {
		p := pathIndex(path+".certs", i)
		if c.Cert == "" {
			errs.add(p+".cert", "is empty; give the PEM certificate file")
		}
		if c.Key == "" {
			errs.add(p+".key", "is empty; give the PEM private key file")
		}
	}
	if t.MinVersion != "1.2" && t.MinVersion != "1.3" {
		errs.add(path+".min_version", fmt.Sprintf(`want "1.2" or "1.3", got %q`, t.MinVersion))
	}
	if t.RedirectListen != "" {
		validateAddr(errs, path+".redirect_listen", t.RedirectListen)
		if !t.Enabled() {
			errs.add(path+".redirect_listen", "redirects to https, but tls.certs is empty; add certificates or remove redirect_listen")
		}
	}
}

// Redacted is the placeholder that replaces secrets in Redacted.
const Redacted = "[redacted]"

// Redacted returns a deep copy of c with secrets replaced by "[redacted]":
// the admin token, passwords in target URLs, bcrypt password hashes, JWT
// secrets and any other secret field, for GET /config. c is not modified.
func (c *Config) Redacted() *Config {
	r := c.clone()
	if r.Admin.Token != "" {
		r.Admin.Token = Redacted
	}
	if r.Redis.Password != "" {
		r.Redis.Password = Redacted
	}
	for _, u := range r.Upstreams {
		if u == nil {
			continue
		}
		for i := range u.Targets {
			u.Targets[i].URL = redactURL(u.Targets[i].URL)
		}
		if d := u.Discovery; d != nil && d.Password != "" {
			d.Password = Redacted
		}
	}
	for _, j := range r.JWT {
		if j == nil {
			continue
		}
		if j.Secret != "" {
			j.Secret = Redacted
		}
		j.JWKSURL = redactURL(j.JWKSURL)
	}
	// API keys are already SHA-256 hashes (setAuthDefaults); a bcrypt hash
	// could still be cracked offline.
	for _, cs := range r.Consumers {
		if cs != nil && cs.BasicAuth != nil && cs.BasicAuth.PasswordHash != "" {
			cs.BasicAuth.PasswordHash = Redacted
		}
	}
	return r
}

// clone deep-copies c through JSON, which every field round-trips.
func (c *Config) clone() *Config {
	b, err := json.Marshal(c)
	if err != nil {
		panic("config: clone: " + err.Error())
	}
	var out Config
	if err := json.Unmarshal(b, &out); err != nil {
		panic("config: clone: " + err.Error())
	}
	return &out
}

// redactURL hides the password of a URL with user info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), Redacted)
	}
	return u.String()
}
