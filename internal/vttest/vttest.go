// Package vttest tells the Vitess integration tests where the test
// cluster's vtgate is. `make test` (scripts/test.sh) starts a real 2-shard
// Vitess and promises these tests, so under it a missing vtgate fails the
// test; a plain `go test` without one skips them.
package vttest

import (
	"os"
	"strings"
	"testing"
)

// Environment variables scripts/test.sh sets.
const (
	// EnvVTGate is the vtgate gRPC address of the test cluster.
	EnvVTGate = "SURGE_TEST_VTGATE"
	// EnvRequire set to 1 makes a missing vtgate a failure, not a skip.
	EnvRequire = "SURGE_TEST_REQUIRE_VITESS"
)

// Outcome is what a Vitess test does for one environment.
type Outcome int

// The outcomes of Lookup.
const (
	Run  Outcome = iota // a vtgate is there
	Skip                // none, and none was promised
	Fail                // none, but make test promised one
)

// Lookup decides from env (KEY=VALUE pairs, as os.Environ returns) whether
// a Vitess test runs, and against which vtgate.
func Lookup(env []string) (addr string, o Outcome) {
	require := false
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case EnvVTGate:
			addr = v
		case EnvRequire:
			require = v == "1"
		}
	}
	switch {
	case addr != "":
		return addr, Run
	case require:
		return "", Fail
	default:
		return "", Skip
	}
}

// VTGate returns the test cluster's vtgate address. Without one it fails
// the test under make test and skips it otherwise.
func VTGate(t testing.TB) string {
	t.Helper()
	addr, o := Lookup(os.Environ())
	switch o {
	case Fail:
		t.Fatalf("%s is not set but %s=1: make test promises the Vitess tests, and scripts/test.sh did not start Vitess", EnvVTGate, EnvRequire)
	case Skip:
		t.Skipf("%s not set; make test starts Vitess and runs this test", EnvVTGate)
	}
	return addr
}
