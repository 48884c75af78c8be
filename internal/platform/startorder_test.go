package platform_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
)

// logRecorder keeps every log record, for tests that count log lines.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l } // attrs of With are not needed here
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// attempts returns the attempt numbers of the "waiting for <check>" lines,
// and every other line at Warn or above logged while waiting for NATS
// (before "nats connected").
func (l *logRecorder) attempts(check string) (attempts []int64, others []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	connected := false
	for _, r := range l.recs {
		connected = connected || r.Message == "nats connected"
		if r.Message == "waiting for "+check {
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "attempt" {
					attempts = append(attempts, a.Value.Int64())
				}
				return true
			})
			continue
		}
		if r.Level >= slog.LevelWarn && !connected {
			others = append(others, r.Message)
		}
	}
	return attempts, others
}

// natsAt runs a nats-server with JetStream on addr (a fixed loopback
// address, so a platform can be told it before it exists), its data in
// storeDir; shut down with the test.
func natsAt(t *testing.T, addr, storeDir string) *server.Server {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return externalServer(t, func(o *server.Options) { o.Host, o.Port, o.StoreDir = host, p, storeDir })
}

type readiness struct {
	Status int
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// getReadyz asks base's /readyz; a zero Status when nothing answers.
func getReadyz(base string) readiness {
	var r readiness
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return r
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &r)
	r.Status = resp.StatusCode
	return r
}

type started struct {
	p   *platform.Platform
	err error
}

// startAsync runs platform.Start in the background; the platform is
// stopped with the test.
func startAsync(t *testing.T, ctx context.Context, o platform.Options) <-chan started {
	t.Helper()
	ch := make(chan started, 1)
	var mu sync.Mutex
	var p *platform.Platform
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if p != nil {
			_ = p.Stop(context.Background())
		}
	})
	go func() {
		got, err := platform.Start(ctx, o)
		mu.Lock()
		p = got
		mu.Unlock()
		ch <- started{got, err}
	}()
	return ch
}

func waitStarted(t *testing.T, ch <-chan started, within time.Duration) *platform.Platform {
	t.Helper()
	select {
	case s := <-ch:
		if s.err != nil {
			t.Fatalf("Start: %v", s.err)
		}
		return s.p
	case <-time.After(within):
		t.Fatalf("Start did not return within %s", within)
	}
	return nil
}

// TestGatewayWaitsForNATS: a gateway started before its NATS (a URL list
// whose first server never comes) answers /healthz, a 503 /readyz naming
// the NATS it connects to and the attempt, and 503 elsewhere, logging one
// line per attempt; once a nats-server starts on that port it serves,
// without a restart.
func TestGatewayWaitsForNATS(t *testing.T) {
	dead, natsAddr, httpAddr := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	urls := "nats://" + dead + ",nats://" + natsAddr
	logs := &logRecorder{}
	o := testenv.Options(t)
	o.NATSURL, o.NATSListen, o.Runtime, o.HTTPAddr, o.Logger = urls, "", false, httpAddr, slog.New(logs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := startAsync(t, ctx, o)
	base := "http://" + httpAddr

	var r readiness
	testenv.Eventually(t, 20*time.Second, "readyz names the NATS awaited at attempt 3", func() bool {
		r = getReadyz(base)
		return r.Status == http.StatusServiceUnavailable && strings.Contains(r.Checks["nats"], ", attempt 3")
	})
	if want := "connecting to " + urls + ": connection refused, attempt "; !strings.HasPrefix(r.Checks["nats"], want) || r.Ready {
		t.Errorf("readyz while waiting = %+v, want nats: %q...", r, want)
	}
	if r.Checks["jetstream"] != "not checked yet" {
		t.Errorf("readyz jetstream while waiting = %q", r.Checks["jetstream"])
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz while waiting: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Post(base+"/v1/echo", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "waiting for nats: connecting to") {
		t.Errorf("a route while waiting = %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}

	natsAt(t, natsAddr, t.TempDir())
	p := waitStarted(t, ch, 30*time.Second)
	if got := getReadyz(p.HTTPURL()); got.Status != http.StatusOK {
		t.Errorf("readyz after NATS came = %+v", got)
	}
	attempts, others := logs.attempts("nats")
	if len(attempts) < 3 {
		t.Fatalf("%d attempts logged, want >= 3", len(attempts))
	}
	for i, a := range attempts {
		if a != int64(i+1) {
			t.Fatalf("attempts logged %v, want 1, 2, 3, ... each once", attempts)
		}
	}
	if len(others) > 0 {
		t.Errorf("other warnings while waiting: %v", others)
	}
}

// TestRuntimeWaitsForNATS: a runtime host started while its NATS is down
// waits, then applies the functions deployed there once the server is
// back (same port, same data); a gateway that lost the same NATS reports
// it on /readyz and recovers on its own.
func TestRuntimeWaitsForNATS(t *testing.T) {
	natsAddr, storeDir := testenv.FreeAddr(t), t.TempDir()
	ns := natsAt(t, natsAddr, storeDir)
	gw := testenv.Start(t, func(o *platform.Options) {
		o.NATSURL, o.NATSListen, o.Runtime = "nats://"+natsAddr, "", false
	})
	gw.Deploy(t, echoManifest)
	ns.Shutdown()
	ns.WaitForShutdown()
	testenv.Eventually(t, 10*time.Second, "gateway readyz 503 without its NATS", func() bool {
		r := getReadyz(gw.URL)
		return r.Status == http.StatusServiceUnavailable && r.Checks["nats"] != "ok" && r.Checks["streams"] != "ok"
	})

	logs := &logRecorder{}
	o := testenv.Options(t)
	o.NATSURL, o.NATSListen, o.HTTPAddr, o.Logger = "nats://"+natsAddr, "", "", slog.New(logs)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ch := startAsync(t, ctx, o)
	testenv.Eventually(t, 20*time.Second, "runtime host logs two attempts", func() bool {
		a, _ := logs.attempts("nats")
		return len(a) >= 2
	})
	select {
	case s := <-ch:
		t.Fatalf("Start returned without NATS: %v", s.err)
	default:
	}

	natsAt(t, natsAddr, storeDir)
	rt := waitStarted(t, ch, 30*time.Second)
	if st, ok := rt.Host().Status().Functions["echo"]; !ok {
		t.Fatalf("runtime host status after NATS came: %+v, want echo applied", st)
	}
	testenv.Eventually(t, 15*time.Second, "gateway ready again", func() bool { return getReadyz(gw.URL).Status == http.StatusOK })
	testenv.Eventually(t, 10*time.Second, "echo served by the late runtime host", func() bool {
		r, err := gw.TryDo("POST", "/v1/echo", []byte(`{"late":1}`))
		return err == nil && r.Status == http.StatusOK && string(r.Body) == `{"late":1}`
	})
	attempts, others := logs.attempts("nats")
	for i, a := range attempts {
		if a != int64(i+1) {
			t.Fatalf("attempts logged %v, want 1, 2, 3, ... each once", attempts)
		}
	}
	if len(others) > 0 {
		t.Errorf("other warnings while waiting: %v", others)
	}
}

const jobsManifest = `
apiVersion: surge/v1
kind: Function
metadata: {name: jobs}
spec:
  handler: external
  trigger: {stream: JOBS, filter: jobs.run}
`

// TestReadyzNamesMissingStream: /readyz is 503 naming a stream a deployed
// function needs while it is gone, and 200 again on its own once it is back.
func TestReadyzNamesMissingStream(t *testing.T) {
	env := testenv.Start(t, nil)
	env.Deploy(t, jobsManifest)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var st jetstream.Stream
	testenv.Eventually(t, 10*time.Second, "the runtime host creates JOBS", func() bool {
		var err error
		st, err = env.JS.Stream(ctx, "JOBS")
		return err == nil
	})
	testenv.Eventually(t, 10*time.Second, "ready with JOBS", func() bool { return getReadyz(env.URL).Status == http.StatusOK })
	cfg := st.CachedInfo().Config
	if err := env.JS.DeleteStream(ctx, "JOBS"); err != nil {
		t.Fatal(err)
	}
	var r readiness
	testenv.Eventually(t, 10*time.Second, "readyz 503 naming JOBS", func() bool {
		r = getReadyz(env.URL)
		return r.Status == http.StatusServiceUnavailable
	})
	if r.Checks["streams"] != "stream JOBS: not found" || r.Checks["nats"] != "ok" {
		t.Errorf("readyz checks = %v, want streams: stream JOBS: not found, the others ok", r.Checks)
	}
	if _, err := env.JS.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "readyz 200 once JOBS is back", func() bool { return getReadyz(env.URL).Status == http.StatusOK })
}

// TestStartWaitsForVTGate: a vtgate that does not answer yet is waited for
// (readyz names it); cancelling the start (Ctrl-C) ends the wait at once
// and frees the ports.
func TestStartWaitsForVTGate(t *testing.T) {
	vtgate, httpAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	logs := &logRecorder{}
	o := testenv.Options(t)
	o.Store, o.StoreConfig, o.HTTPAddr, o.Logger = "vitess", json.RawMessage(`{"address":"`+vtgate+`"}`), httpAddr, slog.New(logs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := startAsync(t, ctx, o)
	var r readiness
	testenv.Eventually(t, 20*time.Second, "readyz names the vtgate awaited", func() bool {
		r = getReadyz("http://" + httpAddr)
		return r.Status == http.StatusServiceUnavailable && strings.Contains(r.Checks["store"], "attempt 2")
	})
	if s := r.Checks["store"]; !strings.Contains(s, "vtgate "+vtgate+" is not reachable") || !strings.Contains(s, "refused") {
		t.Errorf("readyz store = %q", s)
	}
	if r.Checks["nats"] != "not checked yet" {
		t.Errorf("readyz nats = %q, want not checked yet", r.Checks["nats"])
	}
	cancel()
	select {
	case s := <-ch:
		if s.err == nil || !errors.Is(s.err, context.Canceled) || !strings.Contains(s.err.Error(), "waiting for store") {
			t.Errorf("Start after cancel = %v, want context.Canceled while waiting for store", s.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return within 5s of the cancel")
	}
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		t.Fatalf("--http port still taken after the cancelled start: %v", err)
	}
	ln.Close()
	if attempts, _ := logs.attempts("store"); len(attempts) < 2 || !slices.IsSorted(attempts) {
		t.Errorf("store attempts logged: %v", attempts)
	}
}

// TestReadyzNoLeaderOnCluster: on a 3-node cluster, a replicated stream a
// deployed function needs is named on a 503 /readyz while it cannot elect
// a leader (two nodes down), and the gateway is ready again on its own
// once they are back. The other checks keep their own answers: one slow
// check does not time the others out.
func TestReadyzNoLeaderOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: three child nats-servers")
	}
	c := testenv.StartCluster(t, "TestPlatformClusterNode")
	env := c.Surge(t, nil) // --replicas auto: 3
	env.Deploy(t, jobsManifest)
	testenv.Eventually(t, 20*time.Second, "ready on the cluster", func() bool { return getReadyz(env.URL).Status == http.StatusOK })

	// The JOBS leader and one more node down: the one left cannot elect a
	// leader. (Were the leader the one left, it would go on calling itself
	// leader until it noticed the lost quorum.)
	leader, err := c.LeaderOf("JOBS")
	if err != nil {
		t.Fatal(err)
	}
	other := (leader + 1) % testenv.ClusterSize
	c.Kill(leader)
	c.Kill(other)
	var r readiness
	testenv.Eventually(t, 20*time.Second, "readyz 503 naming JOBS", func() bool {
		r = getReadyz(env.URL)
		return r.Status == http.StatusServiceUnavailable && strings.Contains(r.Checks["streams"], "stream JOBS: ")
	})
	t.Logf("two of three nodes down: %v", r.Checks)
	if r.Checks["store"] != "ok" || r.Checks["nats"] != "ok" {
		t.Errorf("checks with two nodes down = %v, want store and nats ok", r.Checks)
	}
	c.Restart(leader)
	c.Restart(other)
	testenv.Eventually(t, 30*time.Second, "readyz 200 once the nodes are back", func() bool {
		r = getReadyz(env.URL)
		return r.Status == http.StatusOK
	})
}

// TestPlatformClusterNode is not a test: it is a node of the NATS cluster
// of TestReadyzNoLeaderOnCluster, run in a child process.
func TestPlatformClusterNode(t *testing.T) { testenv.ServeClusterNode(t) }
