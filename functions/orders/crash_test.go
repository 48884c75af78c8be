package orders_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

// crashStores are the store configs of both runtime hosts, one per orders
// engine: the same shard count, so the second opens the first one's files.
var crashStores = map[string]string{
	"pebble": `{"shards":4,"orders":"pebble"}`,
	"buntdb": `{"shards":4,"orders":"buntdb"}`,
}

// TestCrashHelperRuntime is not a test: it is the runtime host that
// TestCrashRecovery starts in a child process and kills with SIGKILL.
func TestCrashHelperRuntime(t *testing.T) { testenv.ServeChildRuntime(t) }

// TestCrashRecovery: a runtime host dies hard (SIGKILL: no drain, no acks,
// maybe a torn store write) while it persists 10,000 orders published
// asynchronously; a new host on the same store and NATS then brings the
// store to every acked order exactly once.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: waits one ack wait (10s) for redelivery")
	}
	for engine, config := range crashStores {
		t.Run(engine, func(t *testing.T) { testCrashRecovery(t, config) })
	}
}

func testCrashRecovery(t *testing.T, crashStore string) {
	// NATS, JetStream and the manifests; no runtime in this process yet.
	n := testenv.StartWith(t, platform.Options{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1",
		Manifests: manifestsDir(t, "orders.yaml"), AdminToken: testenv.Token, Logger: testenv.Logger(t)})
	rtData := t.TempDir()

	child := testenv.ChildRuntime(t, "TestCrashHelperRuntime", n, rtData, crashStore)

	// 10,000 orders for 100 users, published asynchronously.
	const orders, users = 10_000, 100
	msgs := make([]*nats.Msg, orders)
	orderIDs := make([]string, orders)
	for i := range orders {
		orderIDs[i] = fmt.Sprintf("c-%05d", i)
		msgs[i] = submitMsg(orderIDs[i], submitBody(orderIDs[i], int64(7000+i%users), i%5+1))
	}
	cons, err := n.JS.Consumer(context.Background(), "ORDERS", "order-persist")
	if err != nil {
		t.Fatal(err)
	}
	// Kill the child once it has acked some orders, while it works on more.
	killed := make(chan string, 1)
	go func() {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			info, err := cons.Info(context.Background())
			if err == nil && info.AckFloor.Stream >= 1000 {
				_ = child.Process.Kill() // SIGKILL
				killed <- fmt.Sprintf("ack floor %d, %d awaiting ack, %d pending",
					info.AckFloor.Stream, info.NumAckPending, info.NumPending)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		_ = child.Process.Kill()
		killed <- "child killed at the deadline"
	}()
	acked, _ := publishAsync(t, n.JS, msgs, orderIDs)
	t.Logf("%d of %d publishes acked; crash: %s", len(acked), orders, <-killed)
	_ = child.Wait()
	info, err := cons.Info(context.Background())
	if err == nil {
		t.Logf("after the crash: ack floor %d, %d awaiting ack, %d pending", info.AckFloor.Stream, info.NumAckPending, info.NumPending)
		if info.NumAckPending == 0 && info.NumPending == 0 {
			t.Log("note: the child had finished everything before it was killed")
		}
	}

	// A new runtime on the same store directory and NATS.
	restart := time.Now()
	r := testenv.StartWith(t, platform.Options{NATSURL: n.P.NATSURL(), NATSAuth: n.P.NATSAuth(), DataDir: rtData, Runtime: true,
		StoreConfig: json.RawMessage(crashStore), Logger: testenv.Logger(t)})
	waitDrained(t, n.JS, 25*time.Second)
	t.Logf("recovered in %s (includes the 10s ack wait of messages the dead host held)", time.Since(restart).Round(time.Millisecond))

	want := map[int64][]string{}
	for _, id := range acked {
		var i int
		fmt.Sscanf(id, "c-%d", &i)
		want[int64(7000+i%users)] = append(want[int64(7000+i%users)], id)
	}
	st := testenv.Store[store.Orders](t, r)
	total := assertStoredExactly(t, st, want)
	if total != len(acked) {
		t.Errorf("%d orders stored, want exactly the %d acked", total, len(acked))
		logDeadLetters(t, n.JS)
	}
}

// logDeadLetters says what order-persist dead-lettered, to tell a store
// that lost acknowledged writes from orders sent to the DLQ.
func logDeadLetters(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		t.Logf("DLQ: %v", err)
		return
	}
	t.Logf("DLQ holds %d messages", s.CachedInfo().State.Msgs)
	for seq := uint64(1); seq <= min(s.CachedInfo().State.LastSeq, 5); seq++ {
		if m, err := s.GetMsg(ctx, seq); err == nil {
			t.Logf("DLQ %d: %s: %s (deliveries %s)", seq, m.Subject, m.Header.Get(wire.HeaderDLQError), m.Header.Get(wire.HeaderDLQDeliveries))
		}
	}
}
