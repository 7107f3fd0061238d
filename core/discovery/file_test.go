package discovery

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fastgate/core/config"
)

func TestParseTargets(t *testing.T) {
	f := func(name, data string, want ...string) {
		t.Helper()
		got, err := parseTargets("/etc/t/"+name, []byte(data))
		if err != nil {
			t.Fatalf("parseTargets(%s, %q): %s", name, data, err)
		}
		if w := mkTargets(want...); !slices.Equal(got, w) && !(len(got) == 0 && len(w) == 0) {
			t.Fatalf("parseTargets(%s, %q) got %v; want %v", name, data, got, w)
		}
	}
	f("t.json", `[{"url": "http://10.0.0.1:80", "weight": 2}, {"url": "http://10.0.0.2:80"}]`, "http://10.0.0.1:80*2", "http://10.0.0.2:80")
	f("t.json", `{"targets": [{"url": "http://10.0.0.1:80"}]}`, "http://10.0.0.1:80")
	f("t.json", " \n")
	f("t.yaml", "- {url: \"http://10.0.0.1:80\", weight: 3}\n- url: http://10.0.0.2:80\n", "http://10.0.0.1:80*3", "http://10.0.0.2:80")
	f("t.yml", "targets:\n  - url: http://10.0.0.1:80\n", "http://10.0.0.1:80")
	f("targets", "[{url: \"http://10.0.0.1:80\"}]", "http://10.0.0.1:80") // no extension: YAML
	f("t.yaml", "")
	f("t.yaml", "targets: []")
}

func TestParseTargetsErrors(t *testing.T) {
	f := func(name, data, want string) {
		t.Helper()
		_, err := parseTargets("/etc/t/"+name, []byte(data))
		if err == nil || err.Error() != want {
			t.Fatalf("parseTargets(%s, %q) error got\n%v\nwant\n%s", name, data, err, want)
		}
	}
	shape := `want a list of targets, [{url: "http://10.0.0.5:8080", weight: 2}], or {targets: [...]}`
	f("t.json", `[{"url": "http://10.0.0.1:80", "wieght": 2}]`,
		`discovery: file /etc/t/t.json: invalid JSON: json: unknown field "wieght"; `+shape)
	f("t.json", `{"targets": [], "more": 1}`,
		`discovery: file /etc/t/t.json: invalid JSON: json: unknown field "more"; `+shape)
	f("t.json", `"http://10.0.0.1:80"`, `discovery: file /etc/t/t.json: `+shape)
	f("t.json", `[{"url": "http://10.0.0.1:80"}] []`,
		`discovery: file /etc/t/t.json: invalid JSON: data after the first JSON value; `+shape)
	f("t.yaml", "- {url: \"http://10.0.0.1:80\", wieght: 2}\n",
		`discovery: file /etc/t/t.yaml: invalid YAML: [1:31] unknown field "wieght"; `+shape)
	f("t.yaml", "hello", `discovery: file /etc/t/t.yaml: `+shape)
	f("t.yaml", "- url: [", `discovery: file /etc/t/t.yaml: invalid YAML: [1:8] sequence end token ']' not found`)
	f("t.yaml", "- {url: http://10.0.0.1:80, weight: -1}\n- url: http://10.0.0.2:80\n- url: http://10.0.0.2:80\n",
		`discovery: file /etc/t/t.yaml: targets[0].weight: must be >= 0 (0 means 1), got -1; `+
			`targets[2].url: 10.0.0.2:80 is the address of targets[1] too; list each target once (weights give a bigger share)`)
}

// fileRun runs a fileSource on path; its events arrive on events.
type fileRun struct {
	t      *testing.T
	events chan dnsEvent
}

func runFile(t *testing.T, path string) *fileRun {
	t.Helper()
	src := newFileSource(&config.Discovery{Type: config.DiscoveryFile, Path: path})
	src.debounce = 10 * time.Millisecond
	r := &fileRun{t: t, events: make(chan dnsEvent, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		src.Run(ctx,
			func(ts []config.Target) { r.events <- dnsEvent{targets: ts} },
			func(err error) { r.events <- dnsEvent{err: err, report: true} })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func (r *fileRun) run() *dnsRun { return &dnsRun{t: r.t, events: r.events} }

// writeAtomic replaces the file at path the way editors and deploy tools
// do: write a temporary file beside it, rename it over.
func writeAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "targets.yaml")
	writeAtomic(t, path, "- url: http://127.0.0.1:8001\n")
	r := runFile(t, path).run()
	r.wantSet("http://127.0.0.1:8001")
	writeAtomic(t, path, "targets: [{url: \"http://127.0.0.1:8001\"}, {url: \"http://127.0.0.1:8002\", weight: 3}]\n")
	r.wantSet("http://127.0.0.1:8001", "http://127.0.0.1:8002*3")
	// A file that does not parse: reported with its path, no set.
	writeAtomic(t, path, "- {url: http://127.0.0.1:8001, port: 1}\n")
	r.wantReport("discovery: file " + path + ": invalid YAML: [1:32] unknown field \"port\"")
	// Written in place (no rename) it is seen too; the recovery first.
	if err := os.WriteFile(path, []byte("[{url: \"http://127.0.0.1:8003\"}]"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.wantReport("")
	r.wantSet("http://127.0.0.1:8003")
	// Removed: reported, the set stays.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	r.wantReport("discovery: file " + path + ": ")
}

func TestFileSourceMissingAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "targets.json")
	r := runFile(t, path).run()
	r.wantReport("no such file")
	writeAtomic(t, path, `[{"url": "http://127.0.0.1:8001"}]`)
	r.wantReport("")
	r.wantSet("http://127.0.0.1:8001")
}

// A Kubernetes ConfigMap volume: the file is a symlink through "..data",
// itself a symlink swapped to a new timestamped directory on each update.
func TestFileSourceConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	swap := func(version, data string) {
		t.Helper()
		vdir := filepath.Join(dir, "..v"+version)
		if err := os.Mkdir(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vdir, "targets.yaml"), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(vdir), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	swap("1", "- url: http://127.0.0.1:8001\n")
	path := filepath.Join(dir, "targets.yaml")
	if err := os.Symlink(filepath.Join("..data", "targets.yaml"), path); err != nil {
		t.Fatal(err)
	}
	r := runFile(t, path).run()
	r.wantSet("http://127.0.0.1:8001")
	swap("2", "- url: http://127.0.0.1:8002\n")
	r.wantSet("http://127.0.0.1:8002")
}

func TestFileSourceUnwatchableDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "targets.yaml")
	r := runFile(t, path).run()
	ev := r.next()
	if !ev.report || ev.err == nil || !strings.Contains(ev.err.Error(), "discovery: file "+path+": cannot watch its directory") {
		t.Fatalf("got %+v; want a report that the directory cannot be watched", ev)
	}
}
