package platform_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/host"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/internal/vttest"
	"github.com/surgefn/surge/runtime/store"
)

// sharedBackend is a store backend that is not local, as Vitess is, for
// the scale-out tests whose functions (echo) use no store: a deployment
// with more than one runtime host needs a shared store, and these tests
// are about routing calls to both hosts, not about storage.
const sharedBackend = "test-shared"

type noStore struct{}

func (noStore) Ping(context.Context) error { return nil }
func (noStore) Close() error               { return nil }

func init() {
	store.Register(store.Backend{ID: sharedBackend, Open: func(context.Context, store.OpenContext, json.RawMessage) (store.Store, error) {
		return noStore{}, nil
	}})
}

// sharedStore makes o a runtime host on the shared test backend.
func sharedStore(o *platform.Options) { o.Store, o.StoreConfig = sharedBackend, nil }

// TestStoreHelperRuntime is not a test: it is the runtime host that
// TestStoreSplitRefused starts in a child process and kills with SIGKILL.
func TestStoreHelperRuntime(t *testing.T) { testenv.ServeChildRuntime(t) }

// startRuntime starts a runtime host on n's NATS with its data in dir,
// returning the start error (nil: it serves, stopped at cleanup).
func startRuntime(t *testing.T, n *testenv.Env, dir string, mutate func(*platform.Options)) error {
	t.Helper()
	o := platform.Options{NATSURL: n.P.NATSURL(), NATSAuth: n.P.NATSAuth(), DataDir: dir, Runtime: true,
		StoreConfig: json.RawMessage(`{"shards":4}`), Logger: testenv.Logger(t)}
	if mutate != nil {
		mutate(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := platform.Start(ctx, o)
	if err == nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = p.Stop(ctx)
		})
	}
	return err
}

// TestStoreSplitRefused: the embedded store belongs to one runtime host. A
// host killed with SIGKILL leaves its heartbeat behind; a new host on the
// same data directory starts anyway (the same store), while a host on
// another buntdb directory, or on a shared store, is refused with a
// message saying why and what to do.
func TestStoreSplitRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	n := testenv.StartWith(t, platform.Options{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1",
		AdminToken: testenv.Token, Logger: testenv.Logger(t)})
	dirB := t.TempDir()
	child := testenv.ChildRuntime(t, "TestStoreHelperRuntime", n, dirB, `{"shards":4}`)
	_ = child.Process.Kill() // SIGKILL: no drain, the heartbeat stays
	_ = child.Wait()
	sts, err := host.ReadStatuses(context.Background(), n.JS)
	if err != nil || len(sts) != 1 || sts[0].Store == nil || !strings.Contains(sts[0].Store.Where, dirB) {
		t.Fatalf("heartbeats after the kill: %+v, %v; want the dead host's, naming %s", sts, err, dirB)
	}

	// The same directory again: the same store, accepted.
	if err := startRuntime(t, n, dirB, nil); err != nil {
		t.Fatalf("a host restarting on its own data directory was refused: %v", err)
	}

	// Another buntdb directory: refused, naming both stores and the fix.
	dirC := t.TempDir()
	err = startRuntime(t, n, dirC, nil)
	if !errors.Is(err, host.ErrStoreSplit) {
		t.Fatalf("a host on another embedded store: %v, want %v", err, host.ErrStoreSplit)
	}
	for _, want := range []string{filepath.Join(dirB, "store"), filepath.Join(dirC, "store"), "--store vitess", "expires within 15s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}

	// A shared store next to a live embedded one: refused too.
	if err := startRuntime(t, n, t.TempDir(), sharedStore); !errors.Is(err, host.ErrStoreSplit) {
		t.Fatalf("a host on a shared store while one runs on buntdb: %v, want %v", err, host.ErrStoreSplit)
	}
}

// TestSharedStoreHosts: any number of runtime hosts may share a store
// that is not local (the test backend; Vitess too when SURGE_TEST_VTGATE
// names a vtgate), and an embedded store next to them is refused.
func TestSharedStoreHosts(t *testing.T) {
	for _, c := range []struct {
		name   string
		shared func(t *testing.T) func(*platform.Options)
	}{
		{"shared test backend", func(*testing.T) func(*platform.Options) { return sharedStore }},
		{"vitess", func(t *testing.T) func(*platform.Options) {
			addr := vttest.VTGate(t)
			return func(o *platform.Options) {
				o.Store, o.StoreConfig = "vitess", json.RawMessage(fmt.Sprintf(`{"address":%q,"max_open_conns":4}`, addr))
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			shared := c.shared(t)
			n := testenv.StartWith(t, platform.Options{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1",
				AdminToken: testenv.Token, Logger: testenv.Logger(t)})
			for i := range 2 {
				if err := startRuntime(t, n, t.TempDir(), shared); err != nil {
					t.Fatalf("host %d: %v", i+1, err)
				}
			}
			if err := startRuntime(t, n, t.TempDir(), nil); !errors.Is(err, host.ErrStoreSplit) {
				t.Fatalf("a buntdb host next to hosts on a shared store: %v, want %v", err, host.ErrStoreSplit)
			}
		})
	}
}
