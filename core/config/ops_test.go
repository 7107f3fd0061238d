package config

import (
	"testing"
)

func TestValidateOps(t *testing.T) {
	f := func(ops, want string) {
		t.Helper()
		err := validate(t, validBase+"routes: [{upstream: users}]\n"+ops)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Fatalf("Validate(%s):\ngot  %s\nwant %s", ops, got, want)
		}
	}
	f(`admin: {listen: off}`, "")
	f(`admin: {listen: "127.0.0.1:0"}`, "")
	f(`admin: {listen: "[::1]:9901"}`, "")
	f(`admin: {listen: "localhost:9901"}`, "")
	f(`admin: {listen: ":9901", token: secret}`, "")
	f(`admin: {listen: ":9901"}`, `admin.token: is empty while admin.listen ":9901" is not loopback; anyone who reaches it could reload the config. Set token: "${FASTGATE_ADMIN_TOKEN}", or listen on 127.0.0.1`)
	f("listen: \"127.0.0.1:8080\"\nadmin: {listen: \"127.0.0.1:8080\"}", `admin.listen: "127.0.0.1:8080" would share listen "127.0.0.1:8080"; give the admin API its own port`)
	f("listen: \":8080\"\nadmin: {listen: \"127.0.0.1:8080\"}", `admin.listen: "127.0.0.1:8080" would share listen ":8080"; give the admin API its own port`)
	f("listen: \"127.0.0.1:8080\"\nadmin: {listen: \"127.0.0.2:8080\"}", "")
	f(`admin: {listen: "9901"}`, `admin.listen: want "host:port" such as ":8080" or "127.0.0.1:8080", got "9901"`)
	f(`access_log: {path: stdout, sample: 0.25, buffer: 16}`, "")
	f(`access_log: {path: /tmp/x.log}`, "")
	f(`access_log: {sample: 1.5}`, `access_log.sample: must be > 0 and <= 1 (the share of requests logged), got 1.5; to log none, set path: off`)
	f(`access_log: {sample: -0.5}`, `access_log.sample: must be > 0 and <= 1 (the share of requests logged), got -0.5; to log none, set path: off`)
	f(`access_log: {buffer: -1}`, `access_log.buffer: must be > 0 lines, got -1`)
	f(`tls: {certs: [{cert: a.pem, key: a.key}], redirect_listen: ":8081", min_version: "1.3"}`, "")
	f(`tls: {certs: [{cert: a.pem}]}`, `tls.certs[0].key: is empty; give the PEM private key file`)
	f(`tls: {min_version: "1.1"}`, `tls.min_version: want "1.2" or "1.3", got "1.1"`)
	f(`tls: {redirect_listen: ":8081"}`, `tls.redirect_listen: redirects to https, but tls.certs is empty; add certificates or remove redirect_listen`)
}

func TestDecodeFloat(t *testing.T) {
	f := func(data, want string) {
		t.Helper()
		_, err := Parse([]byte(data), "yaml", nil)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Fatalf("Parse(%s):\ngot  %s\nwant %s", data, got, want)
		}
	}
	f(`access_log: {sample: 0.5}`, "")
	f(`access_log: {sample: 1}`, "")
	f(`access_log: {sample: "0.5"}`, "")
	f(`access_log: {sample: true}`, `access_log.sample: want a number, got true`)
	f(`access_log: {sample: half}`, `access_log.sample: want a number such as 0.5, got string "half"`)
	f(`access_log: {sample: .nan}`, `access_log.sample: want a number such as 0.5, got number NaN`)
}

func TestRedacted(t *testing.T) {
	c := mustParse(t, `
admin: {listen: ":9901", token: s3cret}
upstreams:
  users: {targets: [{url: "http://bob:pw@127.0.0.1:9001"}, {url: "http://127.0.0.1:9002"}]}
routes: [{upstream: users, timeout: 2s}]
`, "yaml")
	c.SetDefaults(nil)
	r := c.Redacted()
	if r.Admin.Token != Redacted || c.Admin.Token != "s3cret" {
		t.Fatalf("admin.token: redacted %q, original %q", r.Admin.Token, c.Admin.Token)
	}
	if got, want := r.Upstreams["users"].Targets[0].URL, "http://bob:%5Bredacted%5D@127.0.0.1:9001"; got != want {
		t.Fatalf("target url: got %s; want %s", got, want)
	}
	if got := r.Upstreams["users"].Targets[1].URL; got != "http://127.0.0.1:9002" {
		t.Fatalf("target url without password changed: %s", got)
	}
	if r.Routes[0].Timeout != c.Routes[0].Timeout || r.Server.MaxRequestBody != c.Server.MaxRequestBody {
		t.Fatalf("durations or sizes did not survive the copy: %v %v", r.Routes[0].Timeout, r.Server.MaxRequestBody)
	}
}
