package testenv

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/host"
	"github.com/surgefn/surge/manifests"
)

// RepoManifests is the repository's manifests/ directory.
func RepoManifests() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "manifests")
}

// ManifestsDir copies the named files of the repository's manifests/ into a
// temporary directory, so a test deploys the real manifests of the
// functions it is about and no others. edit (may be nil) changes each
// function before it is written.
func ManifestsDir(t testing.TB, edit func(fn *manifests.Function), names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		fns, err := manifests.LoadPath(filepath.Join(RepoManifests(), n))
		if err != nil {
			t.Fatal(err)
		}
		for _, fn := range fns {
			if edit != nil {
				edit(&fn)
			}
			b, err := json.Marshal(fn)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, fn.Metadata.Name+".json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// Streams creates the streams that function name of the repository's
// manifests/file needs, its trigger's and those under spec.publishes, as a
// runtime host does before it starts the function: for unit tests of
// functions that publish, so they use the stream the manifest declares.
func Streams(t testing.TB, js jetstream.JetStream, file, name string) {
	t.Helper()
	fns, err := manifests.LoadPath(filepath.Join(RepoManifests(), file))
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range fns {
		if fn.Metadata.Name != name {
			continue
		}
		if err := host.EnsureStreams(context.Background(), js, &fn, host.Replication{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no function %s in manifests/%s", name, file)
}

// JetStream runs a bare nats-server with JetStream (NATSServer) for unit
// tests of functions, and returns a connection and JetStream context on it;
// both end with the test.
func JetStream(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return ConnectJetStream(t, NATSServer(t).ClientURL())
}

// ConnectJetStream connects to urls (a comma separated list) without
// credentials and returns the connection, closed with the test, and a
// JetStream context on it.
func ConnectJetStream(t testing.TB, urls string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// NATSServer runs a bare nats-server with JetStream on a random loopback
// port, data in t.TempDir(), shut down with the test; tests that look at
// the server's own view (its subscriptions) use it directly.
func NATSServer(t testing.TB) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}
