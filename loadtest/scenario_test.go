package loadtest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestScenarioFiles(t *testing.T) {
	files, err := filepath.Glob("scenarios/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("scenarios/*.json: %v files, err %v; want the scenario files", len(files), err)
	}
	want := map[string]bool{"smoke": false, "load": false, "stress": false, "spike": false,
		"soak": false, "reload-under-load": false, "upstream-failure": false}
	for _, f := range files {
		sc, err := Load(f)
		if err != nil {
			t.Errorf("%s", err)
			continue
		}
		if len(sc.Thresholds) == 0 {
			t.Errorf("%s: no thresholds; every scenario needs some", f)
		}
		if d := sc.LoadDuration(); d > 5*time.Minute {
			t.Errorf("%s: load phase %s; want at most 5m", f, d)
		}
		if sc.Stack != nil && sc.Stack.Config != "" {
			if _, err := filepath.Glob(filepath.Join("scenarios", sc.Stack.Config)); err != nil {
				t.Errorf("%s: stack.config %s: %s", f, sc.Stack.Config, err)
			}
		}
		want[sc.Name] = true
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("scenario %s.json missing", name)
		}
	}
}

func TestScenarioValidate(t *testing.T) {
	bad := func(js, wantErr string) {
		t.Helper()
		_, err := Parse([]byte(js))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Parse(%s) got error %v; want one containing %q", js, err, wantErr)
		}
	}
	bad(`{"executor":"constant-arrival-rate","duration":"1s"}`, "rate: must be > 0")
	bad(`{"executor":"constant-vus","vus":1}`, "duration: must be > 0")
	bad(`{"executor":"ramp","vus":1}`, "executor")
	bad(`{"executor":"constant-vus","vus":1,"duration":"2h"}`, "at most 1h")
	bad(`{"executor":"constant-vus","vus":1,"duration":"1s","paths":["x"]}`, "paths[0]")
	bad(`{"executor":"constant-vus","vus":1,"duration":"1s","thresholds":["p99 < soon"]}`, "thresholds[0]")
	bad(`{"executor":"constant-vus","vus":1,"duration":"1s","target":"http://h/p"}`, "target")
	bad(`{"executor":"constant-vus","vus":1,"duration":"1s","actions":[{"at":"5s","start":{"process":"a"}}]}`, "actions[0].at")
	bad(`{"executor":"constant-vus","vus":1,"duration":"1s","actions":[{"at":"0s"}]}`, "exactly one")
	bad(`{"executor":"constant-vus","vus":1,"duration":"1s","actions":[{"at":"0s","signal":{"process":"a","name":"BOOM"}}]}`, "signal.name")
	bad(`{"executor":"ramping-arrival-rate","stages":[{"duration":"0s","target":5}]}`, "stages[0].duration")
	bad(`{"executor":"constant-vus","vus":1,"duration":"1s","vu":2}`, "unknown field")
	bad(`{"executor":"constant-vus","vus":1,"duration":"10"}`, "duration")
}

func TestOverrides(t *testing.T) {
	sc, err := Load("scenarios/upstream-failure.json")
	if err != nil {
		t.Fatal(err)
	}
	o := Overrides{Target: "http://127.0.0.1:1", Duration: 3 * time.Second, Rate: 50}
	if err := o.Apply(sc); err != nil {
		t.Fatal(err)
	}
	if sc.Duration.D() != 3*time.Second || sc.Actions[0].At.D() != 800*time.Millisecond || sc.Rate != 50 || sc.Target != "http://127.0.0.1:1" {
		t.Fatalf("got duration %s, action at %s, rate %v, target %s; want 3s, 800ms, 50, http://127.0.0.1:1",
			sc.Duration.D(), sc.Actions[0].At.D(), sc.Rate, sc.Target)
	}
	st, err := Load("scenarios/stress.json")
	if err != nil {
		t.Fatal(err)
	}
	o = Overrides{Duration: 9 * time.Second, Rate: 500}
	if err := o.Apply(st); err != nil {
		t.Fatal(err)
	}
	if st.LoadDuration() != 9*time.Second || st.Stages[2].Target != 500 {
		t.Fatalf("ramping got %s, peak %v; want 9s and 500", st.LoadDuration(), st.Stages[2].Target)
	}
}

// TestK6Scripts checks the syntax of every k6 script with node (k6 itself
// cannot be installed here). The scripts are ES modules: each is checked as
// a .mjs copy.
func TestK6Scripts(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if ciMode() {
			t.Fatalf("node not found; CI needs it to check loadtest/k6/*.js (apt-get install nodejs)")
		}
		t.Skip("node not found: k6 scripts not checked (install nodejs)")
	}
	files, _ := filepath.Glob("k6/*.js")
	if len(files) == 0 {
		t.Fatal("no k6/*.js scripts")
	}
	dir := t.TempDir()
	for _, f := range files {
		b, err := readFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m := filepath.Join(dir, strings.TrimSuffix(filepath.Base(f), ".js")+".mjs")
		if err := writeFile(m, b); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(node, "--check", m).CombinedOutput(); err != nil {
			t.Errorf("node --check %s: %s\n%s", f, err, out)
		}
	}
}
