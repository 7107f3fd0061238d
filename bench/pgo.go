package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fastgate/loadtest"
)

// Profile-guided optimization (make pgo). go build compiles cmd/fastgate
// with cmd/fastgate/default.pgo, a CPU profile of fastgate under the
// bench's workloads: the compiler inlines the calls that are hot in it
// and devirtualizes its hot interface calls. -pgo FILE writes that
// profile: for each workload with a fastgate row, one fastgate with the
// workload's config and its admin listener on loopback, warmed up, then
// Go's CPU profiler (GET /debug/pprof/profile) for -time while loadgen
// drives the workload; the profiles are merged with equal weight per
// workload (go tool pprof -proto).

// adminOff is the admin line of every bench config of fastgate.
const adminOff = `admin: {listen: "off"}`

// profile writes the merged CPU profile of fastgate over the workloads to
// path.
func (b *bench) profile(path string) error {
	secs := max(int(b.cfg.runTime.Round(time.Second)/time.Second), 1)
	var files []string
	for i := range b.workloads {
		w := &b.workloads[i]
		if !slices.Contains(b.rowTargets(w), targetFastgate) {
			continue
		}
		file := filepath.Join(b.env.dir, "pgo-"+w.Name+".pprof")
		if err := b.profileWorkload(w, file, secs); err != nil {
			return err
		}
		files = append(files, file)
	}
	if len(files) == 0 {
		return fmt.Errorf("bench: -pgo: no workload has a fastgate row (-only, workloads file)")
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command("go", append([]string{"tool", "pprof", "-proto"}, files...)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: -pgo: merging the profiles (go tool pprof -proto): %w\n%s", err, stderr.Bytes())
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("bench: -pgo: %w", err)
	}
	b.logf("wrote %s (%d workloads, %ds each, %d bytes)", path, len(files), secs, out.Len())
	return nil
}

// profileWorkload profiles one fastgate serving w for secs seconds into
// file.
func (b *bench) profileWorkload(w *workload, file string, secs int) error {
	tmpl := w.fastgateTmpl
	if tmpl == "" {
		var err error
		if tmpl, err = render(fastgateConfig, &b.env); err != nil {
			return err
		}
	}
	admin, err := loadtest.FreeAddr()
	if err != nil {
		return err
	}
	if !strings.Contains(tmpl, adminOff) {
		return fmt.Errorf("bench: -pgo: the fastgate config of %s has no line %s to turn the admin listener on with", w.Name, adminOff)
	}
	tmpl = strings.Replace(tmpl, adminOff, fmt.Sprintf("admin: {listen: %q}", admin), 1)
	t, err := b.env.startFastgate("pgo-"+w.Name, tmpl, false)
	if err != nil {
		return err
	}
	defer t.stop()
	if _, err := b.measure(w, t, b.cfg.runTime/4); err != nil { // warm-up
		return err
	}
	// The load runs a second longer than the profile on each side of it.
	load := make(chan error, 1)
	go func() {
		_, err := b.measure(w, t, time.Duration(secs+2)*time.Second)
		load <- err
	}()
	perr := fetchProfile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs), file, time.Duration(secs+30)*time.Second)
	if err := <-load; err != nil {
		return err
	}
	if perr != nil {
		return fmt.Errorf("bench: -pgo: %s: %w", w.Name, perr)
	}
	b.logf("profiled %s for %ds", w.Name, secs)
	return nil
}

// fetchProfile saves the response of url, a pprof endpoint, to file.
func fetchProfile(url, file string, timeout time.Duration) error {
	time.Sleep(time.Second) // the load is under way
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	return os.WriteFile(file, body, 0o644)
}
