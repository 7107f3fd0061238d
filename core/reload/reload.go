// Package reload applies config changes to a running gateway: on demand
// (SIGHUP, POST /reload) and when the config file changes (watched with
// fsnotify, debounced). A config is loaded, validated and compiled off the
// request path; a bad one is rejected with every problem listed, counted in
// fastgate_config_reloads_total{result="error"}, and the previous config
// keeps serving.
package reload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"fastgate/core"
	"fastgate/core/config"
)

// LoadFunc loads and validates the config from its source.
type LoadFunc func() (*config.Config, error)

// Reloader reloads one gateway's config. It is safe for concurrent use;
// reloads run one at a time.
type Reloader struct {
	gw   *core.Gateway
	load LoadFunc
	log  *slog.Logger

	mu sync.Mutex
	// path is the watched config file; lastSum the hash of its content
	// when it last applied, so the watcher skips what a SIGHUP or POST
	// /reload already applied.
	path    string
	lastSum []byte
}

// New returns a Reloader that loads configs with load and applies them to gw.
func New(gw *core.Gateway, load LoadFunc, log *slog.Logger) *Reloader {
	return &Reloader{gw: gw, load: load, log: log}
}

// Reload loads, validates and applies the config. source names the trigger
// in logs ("signal", "admin", "file"). On error nothing changed.
func (r *Reloader) Reload(source string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	var sum []byte
	if r.path != "" {
		sum = fileSum(r.path)
	}
	cfg, err := r.load()
	if err == nil {
		err = r.gw.Apply(cfg)
	}
	r.gw.Metrics().CountReload(err == nil)
	if err != nil {
		r.log.Error("config reload rejected; the previous config keeps serving", "source", source, "error", err.Error())
		return err
	}
	if sum != nil {
		r.lastSum = sum
	}
	r.log.Info("config reloaded", "source", source, "routes", len(cfg.Routes),
		"upstreams", len(cfg.Upstreams), "took", time.Since(start).String())
	return nil
}

// Watch reloads whenever the file at path changes, once it has been quiet
// for debounce, until ctx ends. It watches the directory, so editors that
// replace the file and Kubernetes ConfigMap symlink swaps are seen; a write
// that leaves the content unchanged does not reload.
func (r *Reloader) Watch(ctx context.Context, path string, debounce time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	if err := w.Add(dir); err != nil {
		w.Close()
		return err
	}
	r.mu.Lock()
	r.path, r.lastSum = path, fileSum(path)
	r.mu.Unlock()
	go r.watch(ctx, w, path, debounce)
	return nil
}

// changed reports whether the file's content differs from what last
// applied.
func (r *Reloader) changed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := fileSum(r.path)
	return sum == nil || !bytes.Equal(sum, r.lastSum)
}

func (r *Reloader) watch(ctx context.Context, w *fsnotify.Watcher, path string, debounce time.Duration) {
	defer w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if relevant(ev.Name, path) {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			r.log.Warn("config file watch error", "path", path, "error", err)
		case <-timer.C:
			if r.changed() {
				r.Reload("file") //nolint:errcheck // logged and counted by Reload
			}
		}
	}
}

// relevant reports whether an event on name may change the file at path:
// the file itself, or a Kubernetes-style "..data" symlink swap beside it.
func relevant(name, path string) bool {
	name = filepath.Clean(name)
	return name == path || filepath.Base(name) == "..data"
}

func fileSum(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := sha256.Sum256(b)
	return s[:]
}
