// The kill drill: a 3-node NATS cluster,
// a 2-shard Vitess, 2 gateways and 3 runtime hosts, each its own process,
// under steady order, sign-in and event load over HTTP and NATS. It kills
// with SIGKILL, in turn, the ORDERS stream leader, a runtime host in the
// middle of a batch and a gateway, restarts each, and then checks through
// the public API that every acknowledged write is stored exactly once.
//
// make test runs it once (under a minute); make chaos runs it with
// SURGE_CHAOS_ROUNDS=3, the drill repeated.

package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	_ "github.com/surgefn/surge/functions/all" // the functions the drill deploys
	"github.com/surgefn/surge/internal/natsauth"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/internal/vttest"
)

// procs are the surge processes of the drill; kill and restart keep each
// on its address and data directory.
type procs struct {
	t     *testing.T
	mu    sync.Mutex
	specs []testenv.ChildSpec
	cmds  []*exec.Cmd
	urls  []string // gateway base URLs, by index; "" for a runtime host
}

func (p *procs) start(i int) {
	p.t.Helper()
	cmd, url := testenv.Child(p.t, "TestClusterRuntimeHost", p.specs[i])
	p.mu.Lock()
	p.cmds[i] = cmd
	if url != "" {
		p.urls[i] = url
	}
	p.mu.Unlock()
}

func (p *procs) kill(i int) {
	p.mu.Lock()
	cmd := p.cmds[i]
	p.cmds[i] = nil
	p.mu.Unlock()
	_ = cmd.Process.Kill() // SIGKILL
	_ = cmd.Wait()
}

// gateways are the gateways' URLs, the dead ones included: a client does
// not know which is down, it tries the next.
func (p *procs) gateways() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, u := range p.urls {
		if u != "" {
			out = append(out, u)
		}
	}
	return out
}

func TestChaos(t *testing.T) {
	rounds := 1
	if s := os.Getenv("SURGE_CHAOS_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SURGE_CHAOS_ROUNDS=%q: want a positive count", s)
		}
		rounds = n
	}
	c := cluster(t)
	vtgate := vttest.VTGate(t)
	vt := json.RawMessage(fmt.Sprintf(`{"address":%q,"max_open_conns":16}`, vtgate))

	// The functions, deployed once through the cluster.
	manifests := testenv.ManifestsDir(t, nil, "orders.yaml", "signin.yaml", "events.yaml")
	d := c.Surge(t, func(o *platform.Options) { o.HTTPAddr, o.Runtime, o.Manifests = "", false, manifests })
	d.Stop(t)

	p := &procs{t: t}
	base := testenv.ChildSpec{NATSURL: c.URLs(), Creds: c.SurgeAuth().CredsFile, AdminToken: testenv.Token}
	for range 3 {
		s := base
		s.DataDir, s.Runtime, s.Store, s.StoreConfig = filepath.Join(t.TempDir(), "rt"), true, "vitess", vt
		p.specs = append(p.specs, s)
	}
	for range 2 {
		s := base
		s.DataDir, s.HTTPAddr = filepath.Join(t.TempDir(), "gw"), testenv.FreeAddr(t)
		p.specs = append(p.specs, s)
	}
	p.cmds, p.urls = make([]*exec.Cmd, len(p.specs)), make([]string, len(p.specs))
	for i := range p.specs {
		p.start(i)
	}
	const rt0, gw0 = 0, 3

	// Applications publish with client.creds, to any node.
	nc, err := natsauth.Client{CredsFile: c.ClientCreds()}.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cl, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoad(p.gateways, cl)
	ctx, stop := context.WithCancel(context.Background())
	from := time.Now()
	wait := l.start(ctx)
	defer func() { stop(); wait() }()
	time.Sleep(3 * time.Second)

	// A phase is the 12s after a kill; its longest gap between two acked
	// orders (the phase's edges included) is the kill's outage. Longer
	// than the 10s intake may be out, it fails a kill intake never
	// recovers from.
	type phase struct {
		what    string
		at, end time.Time
	}
	var phases []phase
	watch := func(what string, at time.Time) {
		time.Sleep(time.Until(at.Add(phaseLength)))
		phases = append(phases, phase{what, at, time.Now()})
	}
	for round := range rounds {
		// 1. The ORDERS stream leader.
		leader, err := c.LeaderOf("ORDERS")
		if err != nil {
			t.Fatal(err)
		}
		at := time.Now()
		c.Kill(leader)
		watch(fmt.Sprintf("round %d: ORDERS leader n%d killed", round, leader), at)
		c.Restart(leader)
		c.WaitCurrent(t, "ORDERS", 30*time.Second)

		// 2. A runtime host in the middle of a batch: killed while the
		// persist consumer has deliveries awaiting ack.
		victim := rt0 + round%3
		at = waitBatchInFlight(t, c.JS())
		p.kill(victim)
		watch(fmt.Sprintf("round %d: runtime host %d killed mid-batch", round, victim), at)
		p.start(victim)

		// 3. A gateway: clients move to the other one.
		victim = gw0 + round%2
		at = time.Now()
		p.kill(victim)
		watch(fmt.Sprintf("round %d: gateway %d killed", round, victim-gw0), at)
		p.start(victim)
		time.Sleep(2 * time.Second)
	}
	stop()
	wait()
	gap, gapAt := l.orders.longestGap(from, time.Now())
	l.report(t)
	t.Logf("longest intake outage of the run: %s, from %s after the start", gap.Round(time.Millisecond), gapAt.Sub(from).Round(time.Millisecond))
	for _, ph := range phases {
		gap, _ := l.orders.longestGap(ph.at, ph.end)
		t.Logf("%s: intake out for %s", ph.what, gap.Round(time.Millisecond))
		if gap > 10*time.Second {
			t.Errorf("%s: intake out for %s, want back within 10s", ph.what, gap.Round(time.Millisecond))
		}
	}
	l.requireTraffic(t)
	// Redelivery of what the dead host held waits out the ack wait.
	l.verify(t, 45*time.Second, c.JS())
}

// phaseLength is how long the drill watches intake after a kill.
const phaseLength = 12 * time.Second

// waitBatchInFlight waits until order-persist has deliveries awaiting ack
// (a host is in the middle of a batch) and returns when it saw them.
func waitBatchInFlight(t *testing.T, js jetstream.JetStream) time.Time {
	t.Helper()
	cons, err := js.Consumer(context.Background(), "ORDERS", "order-persist")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		info, err := cons.Info(ctx)
		cancel()
		if err == nil && info.NumAckPending > 0 {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("order-persist had no batch in flight within 10s: nothing to kill a host in the middle of")
	return time.Time{}
}
