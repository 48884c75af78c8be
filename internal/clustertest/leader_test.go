package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

// TestClusterNode is not a test: it is a node of the NATS cluster the
// tests here start (testenv.StartCluster), run in a child process.
func TestClusterNode(t *testing.T) { testenv.ServeClusterNode(t) }

// cluster starts the 3-node cluster of a test.
func cluster(t *testing.T) *testenv.Cluster {
	if testing.Short() {
		t.Skip("cluster test: three child nats-servers and a fault")
	}
	return testenv.StartCluster(t, "TestClusterNode")
}

// replicasOf is the replica count of stream.
func replicasOf(t *testing.T, js jetstream.JetStream, stream string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	return s.CachedInfo().Config.Replicas
}

// TestReplicasAutoAndRaise: on a 3-node cluster a process started with
// --replicas 1 creates its assets with one replica; the next one, with
// --replicas auto, finds 3 servers and raises every one of them to 3, and
// a process with --replicas 1 afterwards lowers none.
func TestReplicasAutoAndRaise(t *testing.T) {
	c := cluster(t)
	assets := []string{"ORDERS", wire.StreamDLQ, wire.StreamCalls, "KV_" + manifests.Bucket, "KV_" + wire.BucketCalls,
		"KV_" + wire.BucketHosts, "KV_ORDERS_IDEM", "KV_ORDERS_HOT"}

	one := c.Surge(t, func(o *platform.Options) { o.Replicas = 1 }, "orders.yaml")
	if one.P.Replicas() != 1 {
		t.Fatalf("--replicas 1 resolved to %d", one.P.Replicas())
	}
	for _, a := range assets {
		if n := replicasOf(t, c.JS(), a); n != 1 {
			t.Errorf("%s: %d replicas with --replicas 1, want 1", a, n)
		}
	}
	one.Stop(t)

	auto := c.Surge(t, nil, "orders.yaml")
	if auto.P.Replicas() != 3 {
		t.Fatalf("--replicas auto on a 3-node cluster resolved to %d, want 3", auto.P.Replicas())
	}
	for _, a := range assets {
		if n := replicasOf(t, c.JS(), a); n != 3 {
			t.Errorf("%s: %d replicas after a start with --replicas auto, want 3 (raised)", a, n)
		}
	}
	// The stream trigger's durable consumer (replicas inherited from its
	// stream) follows it: JetStream moves it up once the stream's new peers
	// have caught up.
	var last string
	testenv.Eventually(t, 30*time.Second, "consumer order-persist on 3 replicas", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ci, err := consumerInfo(ctx, c.JS(), "ORDERS", "order-persist")
		if err != nil || ci.Cluster == nil {
			last = fmt.Sprint(err)
			return false
		}
		last = fmt.Sprintf("leader %s, %d replicas", ci.Cluster.Leader, len(ci.Cluster.Replicas))
		return ci.Cluster.Leader != "" && len(ci.Cluster.Replicas) == 2
	})
	t.Logf("consumer order-persist: %s", last)
	auto.Stop(t)

	again := c.Surge(t, func(o *platform.Options) { o.Replicas = 1 }, "orders.yaml")
	for _, a := range assets {
		if n := replicasOf(t, c.JS(), a); n != 3 {
			t.Errorf("%s: %d replicas after a start with --replicas 1, want 3 (never lowered)", a, n)
		}
	}
	again.Stop(t)

	// More replicas than the cluster has servers: the start fails, naming
	// the asset and the command that fixes it.
	o := testenv.Options(t)
	o.NATSURL, o.NATSAuth, o.NATSListen, o.Replicas = c.URLs(), c.SurgeAuth(), "", 5
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := platform.Start(ctx, o)
	if err == nil {
		_ = p.Stop(ctx)
		t.Fatal("--replicas 5 on a 3-node cluster started")
	}
	if msg := err.Error(); !strings.Contains(msg, "has 3 replica(s) and --replicas asks for 5") || !strings.Contains(msg, "nats stream edit") {
		t.Errorf("--replicas 5 on 3 servers: %v; want the asset, the counts and the nats stream edit that fixes it", err)
	}
}

// intake records the orders a load run got accepted.
type intake struct {
	mu       sync.Mutex
	accepted map[string]int64 // order_id -> user
	times    []time.Time      // when each 202 (or NATS reply) came
	failures atomic.Int64
	lastErr  atomic.Value
}

func (in *intake) ok(id string, user int64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.accepted[id] = user
	in.times = append(in.times, time.Now())
}

func (in *intake) fail(err string) {
	in.failures.Add(1)
	in.lastErr.Store(err)
}

// longestGap is the longest time between two successes in [from, to], the
// edges included: how long intake was out.
func (in *intake) longestGap(from, to time.Time) (gap time.Duration, at time.Time) {
	in.mu.Lock()
	ts := slices.Clone(in.times)
	in.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	prev := from
	for _, x := range append(ts, to) {
		if x.Before(from) || x.After(to) {
			continue
		}
		if d := x.Sub(prev); d > gap {
			gap, at = d, prev
		}
		prev = x
	}
	return gap, at
}

const orderBody = `{"user_id":%d,"items":[{"sku":"A1","qty":1,"price_cents":100}],"currency":"CNY"}`

// TestOrdersLeaderKilled kills (SIGKILL) the node leading the ORDERS
// stream while orders come in over HTTP (POST /v1/orders through the
// gateway) and over NATS (fn.orders.accept requests with client.creds),
// with --replicas auto (3). Every acknowledged order must be stored
// exactly once, intake must resume within 10s (the longest gap between
// two accepted orders is logged as the outage window), and the node,
// restarted, must catch up.
func TestOrdersLeaderKilled(t *testing.T) {
	c := cluster(t)
	e := c.Surge(t, nil, "orders.yaml")
	if n := replicasOf(t, c.JS(), "ORDERS"); n != 3 {
		t.Fatalf("ORDERS has %d replicas, want 3", n)
	}
	c.WaitCurrent(t, "ORDERS", 30*time.Second)
	client, err := nats.Connect(c.URLs(), nats.UserCredentials(c.ClientCreds()), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	in := &intake{accepted: map[string]int64{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const httpWorkers, natsWorkers = 6, 3
	for w := range httpWorkers + natsWorkers {
		user := int64(5000 + w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte(fmt.Sprintf(orderBody, user))
			for {
				select {
				case <-stop:
					return
				default:
				}
				var id string
				if w < httpWorkers {
					r, err := e.TryDo(http.MethodPost, "/v1/orders", body)
					switch {
					case err != nil:
						in.fail(err.Error())
						continue
					case r.Status != http.StatusAccepted:
						in.fail(fmt.Sprintf("%d %s", r.Status, r.Body))
						time.Sleep(20 * time.Millisecond)
						continue
					}
					id = orderID(r.Body)
				} else {
					m, err := client.Request("fn.orders.accept", body, 3*time.Second)
					switch {
					case err != nil:
						in.fail(err.Error())
						continue
					case m.Header.Get("Nats-Service-Error-Code") != "":
						in.fail(m.Header.Get("Nats-Service-Error-Code") + " " + m.Header.Get("Nats-Service-Error"))
						time.Sleep(20 * time.Millisecond)
						continue
					}
					id = orderID(m.Data)
				}
				if id == "" {
					in.fail("accepted without an order_id")
					continue
				}
				in.ok(id, user)
			}
		}()
	}
	start := time.Now()
	time.Sleep(time.Second)
	// A consumer leader move first: order-persist's pull loops must go on
	// (checked below: every accepted order gets stored).
	consLeader := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		info, err := consumerInfo(ctx, c.JS(), "ORDERS", "order-persist")
		if err != nil || info.Cluster == nil {
			return fmt.Sprint("unknown: ", err)
		}
		return info.Cluster.Leader
	}
	was := consLeader()
	if _, err := c.NC().Request("$JS.API.CONSUMER.LEADER.STEPDOWN.ORDERS.order-persist", nil, 5*time.Second); err != nil {
		t.Fatalf("consumer leader step-down: %v", err)
	}
	time.Sleep(time.Second)
	t.Logf("order-persist's consumer leader moved from %s to %s", was, consLeader())
	leader, err := c.LeaderOf("ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	in.mu.Lock()
	before := len(in.times)
	in.mu.Unlock()
	killedAt := time.Now()
	c.Kill(leader)
	t.Logf("killed %s, the ORDERS leader, after %d accepted orders", testenv.NodeName(leader), before)
	// Down for 10s: intake must come back without it (a new leader among
	// the two left), not because it returned.
	time.Sleep(10 * time.Second)
	restartAt := time.Now()
	c.Restart(leader)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	end := time.Now()

	gap, at := in.longestGap(killedAt, end)
	newLeader, _ := c.LeaderOf("ORDERS")
	lastErr, _ := in.lastErr.Load().(string)
	t.Logf("outage window (longest gap without an accepted order after the kill): %s, from %s after the kill; new leader %s; "+
		"%d orders accepted in %s, %d calls failed (last: %s)", gap.Round(time.Millisecond), at.Sub(killedAt).Round(time.Millisecond),
		testenv.NodeName(newLeader), len(in.accepted), end.Sub(start).Round(time.Millisecond), in.failures.Load(), lastErr)
	if gap > 10*time.Second {
		t.Errorf("intake was out for %s after the leader died, want under 10s", gap)
	}
	if n := countBetween(in, killedAt, restartAt); n == 0 {
		t.Errorf("no order accepted in the 10s the killed node was down")
	}

	// The restarted node catches up: its replica of ORDERS becomes current.
	c.WaitCurrent(t, "ORDERS", 30*time.Second)

	// Every acknowledged order is stored exactly once.
	orders := testenv.Store[store.Orders](t, e)
	want := byUser(in.accepted)
	// Listing pages is only exact once nothing is written any more.
	waitConsumed(t, c.JS(), "ORDERS", "order-persist", 60*time.Second)
	missing, dups, extra := compareStored(t, orders, want)
	if missing > 0 || dups > 0 {
		t.Fatalf("%d of %d accepted orders missing from the store, %d stored more than once", missing, len(in.accepted), dups)
	}
	t.Logf("all %d accepted orders stored exactly once (%d stored orders no caller saw accepted: their reply was lost)",
		len(in.accepted), extra)
}

// waitConsumed waits until the durable consumer of stream has settled
// every message.
func waitConsumed(t *testing.T, js jetstream.JetStream, stream, durable string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := consumerInfo(ctx, js, stream, durable)
		var last uint64
		if err == nil {
			// Nothing pending and nothing awaiting an ack is not enough: a
			// message whose ack wait ran out (a killed host held it) waits
			// for redelivery in neither count. The ack floor reaching the
			// stream's last message says every one was settled.
			var s jetstream.Stream
			if s, err = js.Stream(ctx, stream); err == nil {
				last = s.CachedInfo().State.LastSeq
			}
		}
		cancel()
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= last {
			return
		}
		if time.Now().After(deadline) {
			state := fmt.Sprint(err)
			if err == nil {
				state = fmt.Sprintf("%d pending, %d awaiting ack, ack floor %d of %d", info.NumPending, info.NumAckPending, info.AckFloor.Stream, last)
			}
			t.Fatalf("consumer %s of %s not done within %s: %s", durable, stream, within, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func consumerInfo(ctx context.Context, js jetstream.JetStream, stream, durable string) (*jetstream.ConsumerInfo, error) {
	cons, err := js.Consumer(ctx, stream, durable)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

func orderID(body []byte) string {
	var r struct {
		OrderID string `json:"order_id"`
	}
	_ = json.Unmarshal(body, &r)
	return r.OrderID
}

func countBetween(in *intake, from, to time.Time) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, x := range in.times {
		if !x.Before(from) && !x.After(to) {
			n++
		}
	}
	return n
}

// compareStored lists every user's stored orders: how many of want are
// missing, how many order ids are listed more than once, and how many
// stored ones want does not name.
func compareStored(t *testing.T, st store.Orders, want map[int64]map[string]bool) (missing, dups, extra int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return auditOrders(want, func(u int64, after string) ([]string, bool) {
		var orders []store.Order
		var err error
		if after == "" {
			orders, err = st.ListOrders(ctx, u, 0, 1000)
		} else {
			orders, err = st.ListOrdersAfter(ctx, u, after, 1000)
		}
		if err != nil {
			t.Fatalf("list orders of %d: %v", u, err)
		}
		ids := make([]string, len(orders))
		for i, o := range orders {
			ids[i] = o.OrderID
		}
		return ids, len(orders) == 1000
	})
}

// auditOrders compares, user by user, the order ids list gives page after
// page (the first with after "", each next one after the last id of the
// one before, while more) with want: the acked ids missing, the
// copies of an id stored more than once, and the ids stored that were
// never acked (a publish whose ack was lost).
func auditOrders(want map[int64]map[string]bool, list func(user int64, after string) (ids []string, more bool)) (missing, dups, extra int) {
	for u, ids := range want {
		seen := map[string]int{}
		for after, more := "", true; more; {
			var got []string
			got, more = list(u, after)
			for _, id := range got {
				seen[id]++
			}
			if len(got) > 0 {
				after = got[len(got)-1]
			}
		}
		for id := range ids {
			if seen[id] == 0 {
				missing++
			}
		}
		for id, n := range seen {
			if n > 1 {
				dups += n - 1
			}
			if !ids[id] {
				extra++
			}
		}
	}
	return missing, dups, extra
}
