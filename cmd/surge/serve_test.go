package main

import (
	"io"
	"log/slog"
	"math"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestSetMemoryLimit(t *testing.T) {
	for _, v := range []string{"GOMEMLIMIT", "AUTOMEMLIMIT"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	if err := setMemoryLimit("512MiB", log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Errorf("512MiB: limit %d", got)
	}
	if err := setMemoryLimit("0", log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 512<<20 {
		t.Errorf("0 changed the limit to %d", got)
	}
	if err := setMemoryLimit("auto", log); err != nil {
		t.Fatal(err)
	}
	// This machine has memory, so auto sets a limit below it.
	if got := debug.SetMemoryLimit(-1); got == 512<<20 || got <= 0 || got == math.MaxInt64 {
		t.Errorf("auto: limit %d", got)
	}
	if err := setMemoryLimit("lots", log); err == nil {
		t.Error("--memory-limit lots accepted")
	}
}

func TestStoreConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     []string
		backend string
		want    string // "" for none
		wantErr string
	}{
		{"defaults", nil, nil, "buntdb", "", ""},
		{"shards", []string{"--shards", "4"}, nil, "buntdb", `{"shards":4}`, ""},
		{"another backend's flag is an error", []string{"--vtgate", "vt:1"}, nil, "buntdb", "", "--vtgate (or SURGE_VTGATE) is a setting of --store vitess, but --store is buntdb"},
		{"another backend's variable is an error", nil, []string{"SURGE_SHARDS=4"}, "vitess", "", "--shards (or SURGE_SHARDS) is a setting of --store buntdb"},
		{"vitess", []string{"--vtgate", "vt:1", "--vtgate-max-open", "16", "--vtgate-conn-max-lifetime", "5m"}, nil, "vitess",
			`{"address":"vt:1","conn_max_lifetime":"5m0s","max_open_conns":16}`, ""},
		{"from the environment", nil, []string{"SURGE_VTGATE=vt:2", "SURGE_VTGATE_KEYSPACE=shop"}, "vitess", `{"address":"vt:2","keyspace":"shop"}`, ""},
		{"unknown backend gets nothing", []string{"--shards", "4"}, nil, "nosuch", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &serverFlags{}
			cmd := &cobra.Command{Use: "t"}
			addStoreFlags(cmd, f)
			if err := cmd.Flags().Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := applyEnv(cmd.Flags(), tt.env); err != nil {
				t.Fatal(err)
			}
			got, err := storeConfig(f.storeFlags, tt.backend)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("storeConfig error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("storeConfig = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// TestAutoProcs: --gomaxprocs auto raises Go's default to 8 only when the
// process may use every CPU; under a CPU quota (a default below the CPUs)
// it keeps the default.
func TestAutoProcs(t *testing.T) {
	for _, tt := range []struct{ def, cpus, want int }{
		{1, 1, 8}, {2, 2, 8}, {8, 8, 8}, {32, 32, 32},
		{2, 16, 2}, // a cgroup quota of 2 CPUs on a 16-core machine
		{1, 2, 1},
	} {
		if got := autoProcs(tt.def, tt.cpus); got != tt.want {
			t.Errorf("autoProcs(%d, %d) = %d, want %d", tt.def, tt.cpus, got, tt.want)
		}
	}
}

func TestSetGOMAXPROCS(t *testing.T) {
	t.Setenv("GOMAXPROCS", "") // unset for the test: the flag applies
	os.Unsetenv("GOMAXPROCS")
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	log := slog.New(slog.DiscardHandler)
	if err := setGOMAXPROCS("3", log); err != nil || goruntime.GOMAXPROCS(0) != 3 {
		t.Errorf("--gomaxprocs 3: %v, GOMAXPROCS %d", err, goruntime.GOMAXPROCS(0))
	}
	for _, bad := range []string{"0", "-1", "many", ""} {
		if err := setGOMAXPROCS(bad, log); err == nil || !strings.Contains(err.Error(), "--gomaxprocs") {
			t.Errorf("--gomaxprocs %q: err %v, want one naming the flag", bad, err)
		}
	}
	t.Setenv("GOMAXPROCS", "5")
	if err := setGOMAXPROCS("3", log); err != nil || goruntime.GOMAXPROCS(0) != 3 {
		t.Errorf("with GOMAXPROCS set the flag changed GOMAXPROCS (%v, %d)", err, goruntime.GOMAXPROCS(0))
	}
}
