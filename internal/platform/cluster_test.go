package platform_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
)

// syncBuffer is a log sink tests read while the platform writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// copyDir copies the files of src (one level, as <data>/nats is) into dst,
// the way an operator copies the first node's keys to the others.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// clusterNode is the options of one `surge up` node of a test cluster: the
// embedded server only (no gateway, no runtime host: those need a shared
// store on more than one node), its routes on the test-chosen ports.
func clusterNode(t *testing.T, dataDir, listen, routes string, log *slog.Logger) platform.Options {
	return platform.Options{DataDir: dataDir, NATSListen: "127.0.0.1:-1", Logger: log,
		Cluster: platform.ClusterOptions{Name: "surge-test", Listen: listen, Routes: routes}}
}

// startNodes starts every node at once (a JetStream cluster needs a quorum
// of its peers before it answers) and stops them at cleanup.
func startNodes(t *testing.T, opts []platform.Options) []*platform.Platform {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ps := make([]*platform.Platform, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps[i], errs[i] = platform.Start(ctx, o)
		}()
	}
	wg.Wait()
	for i, p := range ps {
		if p != nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				_ = p.Stop(ctx)
			})
		}
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i+1, errs[i])
		}
	}
	return ps
}

// peers is the names of the servers ns has a route to.
func peers(t *testing.T, ns *server.Server) map[string]bool {
	t.Helper()
	rz, err := ns.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range rz.Routes {
		out[r.RemoteName] = true
	}
	return out
}

// TestEmbeddedCluster: three `surge up` nodes holding the first node's
// NATS keys form one NATS cluster with JetStream: a stream created with 3
// replicas through one node has a leader and two current replicas, a
// client with client.creds reaches it through any node, a revocation made
// on one node disconnects the revoked user on another, and a node with
// other keys cannot join.
// threeNodes is the route addresses, the --routes list and the data
// directories of a 3-node test cluster, the first node's NATS keys copied
// to the others before their first start.
func threeNodes(t *testing.T) (addrs []string, routes string, dirs []string) {
	t.Helper()
	addrs = []string{testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)}
	routes = "nats-route://" + strings.Join(addrs, ",nats-route://")
	dirs = []string{t.TempDir(), t.TempDir(), t.TempDir()}
	if _, err := natsauth.Open(filepath.Join(dirs[0], "nats")); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs[1:] {
		copyDir(t, filepath.Join(dirs[0], "nats"), filepath.Join(d, "nats"))
	}
	return addrs, routes, dirs
}

func TestEmbeddedCluster(t *testing.T) {
	addrs, routes, dirs := threeNodes(t)
	var opts []platform.Options
	for i := range dirs {
		opts = append(opts, clusterNode(t, dirs[i], addrs[i], routes, testenv.Logger(t)))
	}
	nodes := startNodes(t, opts)
	names := map[string]bool{}
	for _, p := range nodes {
		names[p.NATSServer().Name()] = true
	}
	if len(names) != 3 {
		t.Fatalf("server names %v, want 3 different", names)
	}
	testenv.Eventually(t, 20*time.Second, "every node routed to the two others", func() bool {
		for _, p := range nodes {
			if len(peers(t, p.NATSServer())) != 2 {
				return false
			}
		}
		return true
	})

	// A stream with 3 replicas, created through node 1, as surge's own
	// processes would (surge.creds).
	nc1, err := nodes[0].NATSAuth().Connect(nodes[0].NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc1.Close()
	js1, _ := jetstream.New(nc1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var created bool
	testenv.Eventually(t, 30*time.Second, "stream R3 created (JetStream meta leader elected)", func() bool {
		// Each try bounded: a request made before the meta leader is
		// elected gets no answer.
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := js1.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.submit"}, Replicas: 3})
		created = err == nil
		if err != nil {
			t.Logf("create stream: %v", err)
		}
		return err == nil || strings.Contains(err.Error(), "already in use")
	})
	if !created {
		t.Log("stream existed after a retry")
	}
	// Seen from node 3 with its own connection: a leader and two current replicas.
	nc3, err := nodes[2].NATSAuth().Connect(nodes[2].NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc3.Close()
	js3, _ := jetstream.New(nc3)
	testenv.Eventually(t, 20*time.Second, "ORDERS on 3 servers, replicas current", func() bool {
		s, err := js3.Stream(ctx, "ORDERS")
		if err != nil {
			return false
		}
		ci := s.CachedInfo().Cluster
		if ci == nil || ci.Leader == "" || len(ci.Replicas) != 2 {
			return false
		}
		for _, r := range ci.Replicas {
			if !r.Current {
				return false
			}
		}
		return true
	})

	// client.creds of node 1 works on every node: a JetStream publish to
	// orders.submit is acked through each. The stream's interest reaches
	// the other nodes over the routes a moment after its replicas are
	// current (make test once saw "no responders" through node 1), so
	// only that answer is retried, for a bounded time.
	for i, p := range nodes {
		nc, err := nats.Connect(p.NATSURL(), nats.UserCredentials(nodes[0].Authority().ClientCreds()))
		if err != nil {
			t.Fatalf("client.creds on node %d: %v", i+1, err)
		}
		var m *nats.Msg
		deadline := time.Now().Add(10 * time.Second)
		for {
			m, err = nc.Request("orders.submit", []byte(fmt.Sprintf(`{"n":%d}`, i)), 10*time.Second)
			if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		nc.Close()
		if err != nil {
			t.Fatalf("publish through node %d: %v", i+1, err)
		}
		if !bytes.Contains(m.Data, []byte(`"stream":"ORDERS"`)) {
			t.Fatalf("publish through node %d: answer %s, want a JetStream ack", i+1, m.Data)
		}
	}

	// A surge gateway joins the cluster with --nats URL,URL (the first
	// one dead): it serves, ready.
	gw := testenv.StartWith(t, platform.Options{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", AdminToken: testenv.Token,
		NATSURL: "nats://" + testenv.FreeAddr(t) + "," + nodes[1].NATSURL(), NATSAuth: nodes[1].NATSAuth(), Logger: testenv.Logger(t)})
	if r := gw.Do(t, "GET", "/readyz", nil); r.Status != 200 {
		t.Errorf("gateway on the comma list: readyz %d %s", r.Status, r.Body)
	}

	// A revocation made on node 1 (surge creds NAME --rotate) reaches node 3.
	creds, err := nodes[0].Authority().FunctionCreds("ext", "fn.ext", "ext", false)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ext.creds")
	if err := os.WriteFile(file, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	ext, err := nats.Connect(nodes[2].NATSURL(), nats.UserCredentials(file), nats.NoReconnect(),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatalf("function creds on node 3: %v", err)
	}
	defer ext.Close()
	if _, err := nodes[0].Authority().FunctionCreds("ext", "fn.ext", "ext", true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("the revoked user is still connected to node 3 15s after the rotation on node 1")
	}
	testenv.Eventually(t, 10*time.Second, "the revoked credentials refused by node 2", func() bool {
		nc, err := nats.Connect(nodes[1].NATSURL(), nats.UserCredentials(file), nats.NoReconnect())
		if err == nil {
			nc.Close()
		}
		return err != nil
	})

	// A fourth node with keys of its own cannot join, says why, and does
	// not start: it waits for a JetStream cluster it never reaches.
	var logs syncBuffer
	stranger := clusterNode(t, t.TempDir(), testenv.FreeAddr(t), routes, slog.New(slog.NewTextHandler(&logs, nil)))
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	startErr := make(chan error, 1)
	go func() {
		p, err := platform.Start(sctx, stranger)
		if err == nil {
			_ = p.Stop(context.Background())
		}
		startErr <- err
	}()
	testenv.Eventually(t, 15*time.Second, "the stranger's refused route logged", func() bool {
		return strings.Contains(logs.String(), "cluster route refused")
	})
	for i, p := range nodes {
		if got := peers(t, p.NATSServer()); len(got) != 2 {
			t.Errorf("node %d routes to %v, want only the two others", i+1, got)
		}
	}
	scancel()
	select {
	case err := <-startErr:
		if err == nil || !strings.Contains(err.Error(), "a majority of the --routes nodes must be up") {
			t.Errorf("the stranger's start: %v, want the wait for the cluster's JetStream", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stranger's start did not end 20s after its context")
	}
}

// TestClusterFlags: bad cluster flags fail at once, naming the flag.
func TestClusterFlags(t *testing.T) {
	taken := testenv.FreeAddr(t)
	ln, err := netListen(taken)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, c := range []struct {
		name    string
		cluster platform.ClusterOptions
		nats    string
		want    string
	}{
		{"routes without a name", platform.ClusterOptions{Routes: "nats-route://127.0.0.1:6222"}, "", "--routes need --cluster-name"},
		{"name without listen", platform.ClusterOptions{Name: "c"}, "", "--cluster-name needs --cluster-listen"},
		{"bad route scheme", platform.ClusterOptions{Name: "c", Listen: "127.0.0.1:6222", Routes: "http://h:1"}, "", `--routes "http://h:1": want nats-route://`},
		{"route without port", platform.ClusterOptions{Name: "c", Listen: "127.0.0.1:6222", Routes: "nats-route://h"}, "", "with a port"},
		{"route with a password", platform.ClusterOptions{Name: "c", Listen: "127.0.0.1:6222", Routes: "nats-route://u:secret@h:1"}, "", "drop the user:password@"},
		{"bad name", platform.ClusterOptions{Name: "my cluster", Listen: "127.0.0.1:6222"}, "", "--cluster-name \"my cluster\""},
		{"listen without port", platform.ClusterOptions{Name: "c", Listen: "127.0.0.1"}, "", "--cluster-listen \"127.0.0.1\": want HOST:PORT"},
		{"with an external NATS", platform.ClusterOptions{Name: "c", Listen: "127.0.0.1:6222"}, "nats://127.0.0.1:4222", "with --nats the external NATS cluster"},
		{"listen port taken", platform.ClusterOptions{Name: "c", Listen: taken}, "", "--cluster-listen " + taken},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := platform.Options{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1", NATSURL: c.nats, Cluster: c.cluster}
			start := time.Now()
			p, err := platform.Start(context.Background(), o)
			if err == nil {
				_ = p.Stop(context.Background())
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s to fail", d)
			}
		})
	}
}

func netListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// TestEmbeddedClusterTLS: with --cluster-tls-*, the nodes' routes are TLS
// (a route port asks for TLS in its INFO) and the three nodes still form
// the cluster; a peer without a certificate the CA signed is refused.
func TestEmbeddedClusterTLS(t *testing.T) {
	pki := newTestPKI(t, t.TempDir())
	addrs, routes, dirs := threeNodes(t)
	var opts []platform.Options
	for i := range dirs {
		o := clusterNode(t, dirs[i], addrs[i], routes, testenv.Logger(t))
		o.Cluster.TLSCert, o.Cluster.TLSKey, o.Cluster.TLSCA = pki.nodeCert, pki.nodeKey, pki.ca
		opts = append(opts, o)
	}
	nodes := startNodes(t, opts)
	testenv.Eventually(t, 20*time.Second, "every node routed to the two others over TLS", func() bool {
		for _, p := range nodes {
			if len(peers(t, p.NATSServer())) != 2 {
				return false
			}
		}
		return true
	})
	// The route port speaks TLS to a peer with a certificate the CA
	// signed, and refuses one without.
	caPEM, err := os.ReadFile(pki.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	nodeCert, err := tls.LoadX509KeyPair(pki.nodeCert, pki.nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(certs []tls.Certificate) error {
		d := &net.Dialer{Timeout: 2 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", addrs[0], &tls.Config{RootCAs: pool, Certificates: certs, MinVersion: tls.VersionTLS12})
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3 tells a client its certificate was refused after the
		// handshake: the first read gets the alert (or the INFO).
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = bufio.NewReader(conn).ReadString('\n')
		return err
	}
	if err := dial([]tls.Certificate{nodeCert}); err != nil {
		t.Errorf("TLS to the route port with the node certificate: %v", err)
	}
	if err := dial(nil); err == nil {
		t.Error("the route port accepted a TLS peer without a certificate")
	}

	// Only one of the three TLS files: refused before anything starts.
	o := clusterNode(t, t.TempDir(), testenv.FreeAddr(t), routes, testenv.Logger(t))
	o.Cluster.TLSCert = pki.nodeCert
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if p, err := platform.Start(ctx, o); err == nil {
		_ = p.Stop(ctx)
		t.Fatal("--cluster-tls-cert alone started")
	} else if !strings.Contains(err.Error(), "go together") {
		t.Errorf("--cluster-tls-cert alone: %v, want the three flags named together", err)
	}
}
