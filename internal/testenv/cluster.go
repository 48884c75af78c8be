package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/host"
	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/internal/platform"
)

// Environment of a cluster node run as a child process by StartCluster.
const (
	envNode        = "SURGE_CLUSTER_NODE"
	envNodeName    = "SURGE_CLUSTER_NODE_NAME"
	envNodePort    = "SURGE_CLUSTER_NODE_PORT"
	envNodeCluster = "SURGE_CLUSTER_NODE_CLUSTER_PORT"
	envNodeRoutes  = "SURGE_CLUSTER_NODE_ROUTES"
	envNodeDir     = "SURGE_CLUSTER_NODE_DIR"
)

// ClusterName is the NATS cluster name of a test cluster.
const ClusterName = "surge-test"

// ClusterSize is the number of nodes of a test cluster.
const ClusterSize = 3

// Cluster is a 3-node NATS cluster on loopback, JetStream on every node,
// each node a child process (so Kill is a real SIGKILL: no shutdown, no
// flush), all trusting one natsauth operator: surge.creds and client.creds
// of AuthDir work on every node, as with `surge up`'s embedded server.
type Cluster struct {
	t       testing.TB
	helper  string
	AuthDir string
	ports   [ClusterSize]int // client ports
	cports  [ClusterSize]int // route ports
	dirs    [ClusterSize]string
	mu      sync.Mutex
	nodes   [ClusterSize]*exec.Cmd
	nc      *nats.Conn
	js      jetstream.JetStream
	authCli natsauth.Client
}

// ServeClusterNode is the body of the helper test that StartCluster runs
// in each child process: one nats-server node, never stopped (the parent
// kills it). In the parent process it skips the test.
func ServeClusterNode(t *testing.T) {
	if os.Getenv(envNode) != t.Name() {
		t.Skip("helper process of a cluster test")
	}
	dir := os.Getenv(envNodeDir)
	auth, err := natsauth.Open(filepath.Join(dir, "nats"))
	if err != nil {
		fmt.Println("START FAILED: auth:", err)
		os.Exit(3)
	}
	port, _ := strconv.Atoi(os.Getenv(envNodePort))
	cport, _ := strconv.Atoi(os.Getenv(envNodeCluster))
	so := &server.Options{
		ServerName: os.Getenv(envNodeName),
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(dir, "jetstream"),
		NoSigs:     true,
		NoLog:      os.Getenv("SURGE_TEST_LOG") == "",
		MaxPayload: 8 << 20,
		Cluster:    server.ClusterOpts{Name: ClusterName, Host: "127.0.0.1", Port: cport},
		Routes:     server.RoutesFromStr(os.Getenv(envNodeRoutes)),
	}
	auth.ConfigureServer(so)
	ns, err := server.NewServer(so)
	if err != nil {
		fmt.Println("START FAILED:", err)
		os.Exit(3)
	}
	if !so.NoLog {
		ns.ConfigureLogger()
	}
	ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		fmt.Println("START FAILED: not ready within 20s")
		os.Exit(3)
	}
	auth.Attach(ns)
	fmt.Println("READY")
	time.Sleep(10 * time.Minute) // killed long before
	os.Exit(4)
}

// StartCluster starts a 3-node cluster whose nodes run the helper test
// named helper (a test in the calling package that calls
// ServeClusterNode), and returns once JetStream has a meta leader. Every
// node is killed with the test.
func StartCluster(t testing.TB, helper string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, helper: helper, AuthDir: filepath.Join(t.TempDir(), "auth")}
	// The keys are made once and copied to each node's own directory (a
	// node re-signs the credentials files of its directory at start).
	if _, err := natsauth.Open(c.AuthDir); err != nil {
		t.Fatal(err)
	}
	c.authCli = natsauth.Client{CredsFile: filepath.Join(c.AuthDir, natsauth.SurgeCredsFile)}
	// Fixed ports for the cluster's life (routes name them and a restarted
	// node takes its own again), chosen by the OS among free ones: parallel
	// test packages probing at once get different ones.
	free := freePorts(t, 2*ClusterSize)
	for i := range ClusterSize {
		c.ports[i], c.cports[i] = free[i], free[ClusterSize+i]
		c.dirs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i))
		if err := copyDir(c.AuthDir, filepath.Join(c.dirs[i], "nats")); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if c.nc != nil {
			c.nc.Close()
		}
		for i := range ClusterSize {
			c.Kill(i)
		}
	})
	var wg sync.WaitGroup
	errs := make([]error, ClusterSize)
	for i := range ClusterSize {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.start(i) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	nc, err := c.authCli.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.CustomInboxPrefix(natsauth.InboxPrefix))
	if err != nil {
		t.Fatal(err)
	}
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	c.waitMeta(t)
	return c
}

// freePorts returns n distinct loopback TCP ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln) // held until all are chosen: no duplicates
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

func copyDir(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// start runs node i as a child process and waits until it serves clients.
func (c *Cluster) start(i int) error {
	var routes []string
	for j := range ClusterSize {
		if j != i {
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", c.cports[j]))
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+c.helper+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), envNode+"="+c.helper, envNodeName+"="+NodeName(i),
		envNodePort+"="+strconv.Itoa(c.ports[i]), envNodeCluster+"="+strconv.Itoa(c.cports[i]),
		envNodeRoutes+"="+strings.Join(routes, ","), envNodeDir+"="+c.dirs[i])
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	c.mu.Lock()
	c.nodes[i] = cmd
	c.mu.Unlock()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); line == "READY" || strings.HasPrefix(line, "START FAILED") {
				ready <- line
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line := <-ready:
		if line != "READY" {
			return fmt.Errorf("cluster node %d: %s", i, line)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("cluster node %d not ready within 30s", i)
	}
}

// NodeName is the server name of node i.
func NodeName(i int) string { return "n" + strconv.Itoa(i) }

// URLs is the client URL of every node, comma separated (--nats).
func (c *Cluster) URLs() string {
	urls := make([]string, ClusterSize)
	for i := range urls {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// URL is node i's client URL.
func (c *Cluster) URL(i int) string { return "nats://127.0.0.1:" + strconv.Itoa(c.ports[i]) }

// SurgeAuth is how surge's own processes authenticate to the cluster.
func (c *Cluster) SurgeAuth() natsauth.Client { return c.authCli }

// ClientCreds is the path of the applications' client.creds.
func (c *Cluster) ClientCreds() string { return filepath.Join(c.AuthDir, natsauth.ClientCredsFile) }

// JS is a JetStream context with surge's credentials, connected to every node.
func (c *Cluster) JS() jetstream.JetStream { return c.js }

// NC is the connection behind JS.
func (c *Cluster) NC() *nats.Conn { return c.nc }

// Kill ends node i with SIGKILL and waits for the process to be gone.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	cmd := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Restart starts node i again on its ports and data (after Kill).
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.start(i); err != nil {
		c.t.Fatal(err)
	}
}

// LeaderOf is the index of the node leading stream (its Raft group).
func (c *Cluster) LeaderOf(stream string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return -1, err
	}
	ci := s.CachedInfo().Cluster
	if ci == nil || ci.Leader == "" {
		return -1, fmt.Errorf("stream %s has no leader", stream)
	}
	for i := range ClusterSize {
		if NodeName(i) == ci.Leader {
			return i, nil
		}
	}
	return -1, fmt.Errorf("stream %s: unknown leader %q", stream, ci.Leader)
}

// WaitCurrent waits until stream has a leader and every replica is
// current (caught up), failing the test after timeout.
func (c *Cluster) WaitCurrent(t testing.TB, stream string, timeout time.Duration) *jetstream.StreamInfo {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := c.js.Stream(ctx, stream)
		cancel()
		if err == nil {
			info := s.CachedInfo()
			ci := info.Cluster
			if ci != nil && ci.Leader != "" && len(ci.Replicas) == info.Config.Replicas-1 && allCurrent(ci.Replicas) {
				return info
			}
			last = fmt.Sprintf("cluster %+v", ci)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("stream %s not current within %s: %s", stream, timeout, last)
	return nil
}

func allCurrent(ps []*jetstream.PeerInfo) bool {
	for _, p := range ps {
		if !p.Current || p.Offline {
			return false
		}
	}
	return true
}

// waitMeta waits until the cluster's JetStream can place ClusterSize
// replicas: a meta leader elected that knows every peer. A meta leader
// answers API calls before it has heard from every node, and a test's R3
// stream or bucket created then fails "no suitable peers for placement"
// (make test saw it once). The second wait, host.AutoReplicas, is the one
// --replicas auto does, with a probe stream of 3 replicas.
func (c *Cluster) waitMeta(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Until a meta leader is elected an API request gets no answer at
	// all: the first wait asks in short attempts.
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.js.AccountInfo(actx)
		acancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster JetStream not available within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		n, err := host.AutoReplicas(ctx, c.nc, c.js, slog.New(slog.DiscardHandler))
		if err == nil && n == ClusterSize {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster JetStream cannot place %d replicas within 30s: %d, %v", ClusterSize, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Surge runs a surge process (gateway, runtime host with a buntdb store,
// the repo's manifests named in files deployed) on the cluster, connected
// to every node (--nats URL1,URL2,URL3), with Options changed by mutate
// (which may be nil).
func (c *Cluster) Surge(t testing.TB, mutate func(*platform.Options), files ...string) *Env {
	t.Helper()
	o := Options(t)
	o.NATSURL, o.NATSAuth, o.NATSListen = c.URLs(), c.SurgeAuth(), ""
	if len(files) > 0 {
		dir := t.TempDir()
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(RepoManifests(), f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		o.Manifests = dir
	}
	if mutate != nil {
		mutate(&o)
	}
	return StartWith(t, o)
}

// FreeAddr is a loopback address with a port nothing listens on now, for a
// server a test starts (and restarts) on a known address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])
}
