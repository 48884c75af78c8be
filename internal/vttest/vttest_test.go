package vttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		wantAddr string
		want     Outcome
	}{
		{"vtgate set", []string{EnvVTGate + "=127.0.0.1:15991"}, "127.0.0.1:15991", Run},
		{"vtgate set and required", []string{EnvRequire + "=1", EnvVTGate + "=127.0.0.1:1"}, "127.0.0.1:1", Run},
		{"required, missing", []string{EnvRequire + "=1"}, "", Fail},
		{"required, empty", []string{EnvRequire + "=1", EnvVTGate + "="}, "", Fail},
		{"not required, missing", nil, "", Skip},
		{"require=0", []string{EnvRequire + "=0"}, "", Skip},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, o := Lookup(tt.env)
			if addr != tt.wantAddr || o != tt.want {
				t.Errorf("Lookup = %q, %d; want %q, %d", addr, o, tt.wantAddr, tt.want)
			}
		})
	}
}

// TestMakeTestFailsWhenVitessCannotStart runs scripts/test.sh (what make
// test runs) with a Vitess that cannot start (its data parent does not
// exist): it must exit non-zero before any Go test runs, not run the suite
// with the Vitess tests skipped.
func TestMakeTestFailsWhenVitessCannotStart(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("scripts/vitess-test-env.sh runs as root (CI does)")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts/test.sh"), "-run", "^$")
	cmd.Dir = root
	env := []string{}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != EnvVTGate && k != EnvRequire {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "SURGE_VT_DATA_PARENT="+filepath.Join(t.TempDir(), "missing"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("scripts/test.sh passed with a Vitess that cannot start:\n%s", out)
	}
	if strings.Contains(string(out), "ok  \t") || strings.Contains(string(out), "no test files") {
		t.Errorf("scripts/test.sh ran go test although Vitess did not start:\n%s", out)
	}
}
