package platform_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
)

// lockChildEnv makes the test binary, run again as a child, start a second
// platform on the data directory it names and print Start's error.
const lockChildEnv = "SURGE_TEST_LOCK_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(lockChildEnv); dir != "" {
		os.Exit(lockChild(dir))
	}
	os.Exit(m.Run())
}

// lockChild is the second process: it starts a platform on dir with ports
// of its own and reports what Start said. Exit 0 means it was refused.
func lockChild(dir string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := platform.Start(ctx, platform.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0",
		NATSListen: "127.0.0.1:-1", Runtime: true, AdminToken: testenv.Token})
	if err == nil {
		_ = p.Stop(ctx)
		os.Stdout.WriteString("started\n")
		return 1
	}
	os.Stdout.WriteString(err.Error() + "\n")
	if !errors.Is(err, platform.ErrDataDirInUse) {
		return 2
	}
	return 0
}

func TestDataDirLock(t *testing.T) {
	first := testenv.Start(t, nil)
	first.Deploy(t, echoManifest)

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), lockChildEnv+"="+first.Opts.DataDir)
	began := time.Now()
	out, err := child.Output()
	took := time.Since(began)
	if err != nil {
		t.Fatalf("second process on the same --data: %v, said %q", err, out)
	}
	msg := string(out)
	for _, want := range []string{first.Opts.DataDir, "process " + strconv.Itoa(os.Getpid()), "--data"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not name %q", msg, want)
		}
	}
	if took > 10*time.Second {
		t.Errorf("refusal took %s; the lock is taken before anything starts", took)
	}

	// The first process is unharmed: ready, serving, its lock file intact.
	if r := first.Do(t, "GET", "/readyz", nil); r.Status != 200 {
		t.Errorf("first process readyz = %d %s", r.Status, r.Body)
	}
	if r := first.Do(t, "POST", "/v1/echo", []byte(`{"a":1}`)); r.Status != 200 {
		t.Errorf("first process echo = %d %s", r.Status, r.Body)
	}
	b, err := os.ReadFile(filepath.Join(first.Opts.DataDir, "LOCK"))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("LOCK = %q, %v; want this pid", b, err)
	}

	// Stopping releases it: the next start on the directory succeeds.
	first.Stop(t)
	testenv.StartWith(t, first.Opts)
}

func TestStartFailsFast(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	tests := []struct {
		name   string
		mutate func(*platform.Options)
		want   []string
	}{
		// The known ones include this package's test backend (test-shared).
		{"unknown store", func(o *platform.Options) { o.Store = "mysql" }, []string{"--store", `"mysql"`, "known: buntdb, ", ", vitess)"}},
		{"vitess without vtgate", func(o *platform.Options) { o.Store, o.StoreConfig = "vitess", nil }, []string{"--vtgate"}},
		// A vtgate that does not answer yet is waited for (TestStartWaitsForVTGate);
		// an address that can never answer is refused.
		{"vtgate address malformed", func(o *platform.Options) {
			o.Store, o.StoreConfig = "vitess", json.RawMessage(`{"address":"127.0.0.1"}`)
		}, []string{"address", `"127.0.0.1" is not vtgate's gRPC host:port`}},
		{"bad http address", func(o *platform.Options) { o.HTTPAddr = "8080" }, []string{"--http", "HOST:PORT"}},
		{"http port taken", func(o *platform.Options) { o.HTTPAddr = taken.Addr().String() }, []string{"--http", taken.Addr().String(), "in use"}},
		{"nats port taken", func(o *platform.Options) { o.NATSListen = taken.Addr().String() }, []string{"--nats-listen", "in use"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testenv.Options(t)
			tt.mutate(&o)
			began := time.Now()
			p, err := platform.Start(context.Background(), o)
			if err == nil {
				_ = p.Stop(context.Background())
				t.Fatal("started")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if took := time.Since(began); took > 3*time.Second {
				t.Errorf("took %s to refuse", took)
			}
		})
	}
	// Flag errors are found before NATS starts: no JetStream files.
	o := testenv.Options(t)
	o.Store = "mysql"
	if _, err := platform.Start(context.Background(), o); err == nil {
		t.Fatal("started")
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, "jetstream")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("jetstream dir after a flag error: %v", err)
	}
}
