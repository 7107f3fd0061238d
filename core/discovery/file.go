package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/goccy/go-yaml"

	"fastgate/core/config"
)

// Bounds of the file source's waits.
const (
	fileDebounce   = 100 * time.Millisecond
	fileRetryFirst = time.Second      // first retry of a directory that cannot be watched
	fileRetryMax   = 30 * time.Second // longest retry
)

// fileSource reads a JSON or YAML target list and reads it again whenever
// it changes. It watches the directory, not the file, so editors that
// replace the file and Kubernetes ConfigMap "..data" symlink swaps are
// seen; events are debounced.
type fileSource struct {
	path     string
	debounce time.Duration
}

func newFileSource(d *config.Discovery) *fileSource {
	return &fileSource{path: filepath.Clean(d.Path), debounce: fileDebounce}
}

// Run reads the file, then again after each change, until ctx ends.
func (s *fileSource) Run(ctx context.Context, emit func([]config.Target), report func(error)) {
	w, ok := s.watch(ctx, report)
	if !ok {
		return
	}
	defer w.Close()
	failing := s.read(emit, report, false)
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
			if relevant(ev.Name, s.path) {
				timer.Reset(s.debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			report(fmt.Errorf("discovery: file %s: watch: %w", s.path, err))
			failing = true
		case <-timer.C:
			failing = s.read(emit, report, failing)
		}
	}
}

// watch watches the file's directory, retrying with backoff while it
// cannot (a directory not there yet); false when ctx ended first.
func (s *fileSource) watch(ctx context.Context, report func(error)) (*fsnotify.Watcher, bool) {
	backoff := fileRetryFirst
	for {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			if err = w.Add(filepath.Dir(s.path)); err == nil {
				return w, true
			}
			w.Close()
		}
		report(fmt.Errorf("discovery: file %s: cannot watch its directory: %w; create it, or fix discovery.path", s.path, err))
		if !sleepCtx(ctx, backoff) {
			return nil, false
		}
		backoff = min(2*backoff, fileRetryMax)
	}
}

// read reads and emits the targets, or reports why not; it returns
// whether it failed.
func (s *fileSource) read(emit func([]config.Target), report func(error), failing bool) bool {
	data, err := os.ReadFile(s.path)
	var targets []config.Target
	if err != nil {
		err = fmt.Errorf("discovery: file %s: %w; the last targets keep serving", s.path, unwrapPath(err))
	} else {
		targets, err = parseTargets(s.path, data)
	}
	if err != nil {
		report(err)
		return true
	}
	if failing {
		report(nil)
	}
	emit(targets)
	return false
}

// unwrapPath drops the path an os error repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// relevant reports whether an event on name may change the file at path:
// the file itself, or a Kubernetes-style "..data" symlink swap beside it.
func relevant(name, path string) bool {
	name = filepath.Clean(name)
	return name == path || filepath.Base(name) == "..data"
}

// targetList is the object form of a target file.
type targetList struct {
	Targets []config.Target `json:"targets" yaml:"targets"`
}

// parseTargets decodes a target file: JSON when its name ends in .json,
// else YAML; a list of targets or {targets: [...]}; unknown keys are
// errors. The targets are validated as an upstream's are.
func parseTargets(path string, data []byte) ([]config.Target, error) {
	var targets []config.Target
	var err error
	if strings.EqualFold(filepath.Ext(path), ".json") {
		targets, err = parseTargetsJSON(data)
	} else {
		targets, err = parseTargetsYAML(data)
	}
	if err == nil {
		err = config.ValidateTargets("targets", targets)
	}
	if err != nil {
		return nil, fmt.Errorf("discovery: file %s: %s", path, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return targets, nil
}

const fileShape = `want a list of targets, [{url: "http://10.0.0.5:8080", weight: 2}], or {targets: [...]}`

func parseTargetsJSON(data []byte) ([]config.Target, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var targets []config.Target
	var err error
	switch data[0] {
	case '[':
		err = dec.Decode(&targets)
	case '{':
		var l targetList
		err = dec.Decode(&l)
		targets = l.Targets
	default:
		return nil, fmt.Errorf("%s", fileShape)
	}
	if err == nil && dec.More() {
		err = fmt.Errorf("data after the first JSON value")
	}
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w; %s", err, fileShape)
	}
	return targets, nil
}

func parseTargetsYAML(data []byte) ([]config.Target, error) {
	var probe any
	if err := yaml.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("invalid YAML: %s", yaml.FormatError(err, false, false))
	}
	var targets []config.Target
	var err error
	switch probe.(type) {
	case nil:
		return nil, nil
	case []any:
		err = yaml.UnmarshalWithOptions(data, &targets, yaml.DisallowUnknownField())
	case map[string]any:
		var l targetList
		err = yaml.UnmarshalWithOptions(data, &l, yaml.DisallowUnknownField())
		targets = l.Targets
	default:
		return nil, fmt.Errorf("%s", fileShape)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid YAML: %s; %s", yaml.FormatError(err, false, false), fileShape)
	}
	return targets, nil
}
