package main

import (
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
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

// TestAutoProcs: --gomaxprocs auto raises Go's default to 8 only without
// a CPU quota; under one it keeps the default.
func TestAutoProcs(t *testing.T) {
	for _, tt := range []struct {
		def   int
		quota bool
		want  int
	}{
		{1, false, 8}, {2, false, 8}, {8, false, 8}, {32, false, 32},
		{2, true, 2}, // Go's default for a quota of 1.5 CPUs on 2 cores: 2, like no quota
		{16, true, 16},
	} {
		if got := autoProcs(tt.def, tt.quota); got != tt.want {
			t.Errorf("autoProcs(%d, quota %v) = %d, want %d", tt.def, tt.quota, got, tt.want)
		}
	}
}

// TestCPUQuota reads cgroup v2 and v1 quotas of the process's cgroup and
// of its ancestors, and takes "max", -1 and missing files as none.
func TestCPUQuota(t *testing.T) {
	write := func(root, rel, body string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v2, v2none, v1, v1none, v1parent := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	write(v2, "kubepods/pod1/cpu.max", "150000 100000\n")
	write(v2none, "cpu.max", "max 100000\n")
	write(v2none, "kubepods/pod1/cpu.max", "max 100000\n")
	write(v1, "cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "200000\n")
	write(v1none, "cpu/cpu.cfs_quota_us", "-1\n")
	write(v1parent, "cpu/docker/cpu.cfs_quota_us", "50000\n")
	for _, tt := range []struct {
		name, root, cgroup string
		want               bool
	}{
		{"v2 quota", v2, "0::/kubepods/pod1\n", true},
		{"v2 max", v2none, "0::/kubepods/pod1\n", false},
		{"v1 quota", v1, "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n", true},
		{"v1 none", v1none, "1:cpu:/\n0::/\n", false},
		{"v1 quota on a parent", v1parent, "1:cpu:/docker/abc\n", true},
		{"no cgroup files", t.TempDir(), "0::/\n", false},
		{"no /proc/self/cgroup", v2, "", false},
	} {
		if got := cpuQuota(tt.root, []byte(tt.cgroup)); got != tt.want {
			t.Errorf("%s: cpuQuota = %v, want %v", tt.name, got, tt.want)
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
	t.Setenv("GOMAXPROCS", "5") // read at start by the runtime only, so GOMAXPROCS stays 3
	if err := setGOMAXPROCS("4", log); err != nil || goruntime.GOMAXPROCS(0) != 3 {
		t.Errorf("with GOMAXPROCS set the flag changed GOMAXPROCS (%v, %d)", err, goruntime.GOMAXPROCS(0))
	}
}
