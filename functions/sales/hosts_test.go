package sales_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgefn/surge/functions/sales"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/internal/vttest"
	"github.com/surgefn/surge/runtime/store"
)

// TestSaleTwoHosts: two runtime hosts on one NATS and one Vitess keyspace
// (the supported multi-host shape) serve one sale, each with its own
// sale-order and order-persist instances: exactly 100 units are sold
// across both, and each order is stored exactly once.
func TestSaleTwoHosts(t *testing.T) {
	addr := vttest.VTGate(t)
	vt := json.RawMessage(fmt.Sprintf(`{"address":%q,"max_open_conns":16}`, addr))
	dir := testenv.ManifestsDir(t, nil, "orders.yaml", "sales.yaml")
	a := testenv.Start(t, func(o *platform.Options) {
		o.Manifests = dir
		o.Store, o.StoreConfig = "vitess", vt
		testenv.WithUserAuth(t, o)
	})
	a.HTTP.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	b := testenv.StartWith(t, platform.Options{NATSURL: a.P.NATSURL(), NATSAuth: a.P.NATSAuth(), DataDir: t.TempDir(),
		Runtime: true, Store: "vitess", StoreConfig: vt, Logger: testenv.Logger(t)})
	testenv.Eventually(t, 10*time.Second, "sale-order on the second host", func() bool {
		st, ok := b.P.Host().Status().Functions["sale-order"]
		return ok && st.Revision != "" && st.Instances > 0
	})
	// Ids of this run only: the keyspace outlives the test.
	run := time.Now().UnixNano() % 1_000_000_000
	sale := fmt.Sprintf("two-%d", run)
	base := 1_000_000 + run*10_000
	openSale(t, a, sale, 100, 1)
	const buyers = 2000
	var accepted atomic.Int64
	var mu sync.Mutex
	orderOf := map[int64]string{}
	eachBuyer(buyers, 64, func(u int64) {
		r, err := a.TryDo("POST", "/v1/sales/"+sale+"/orders", buy(base+u, 1))
		if err != nil || r.Status != http.StatusAccepted {
			return
		}
		var acc sales.Accepted
		_ = json.Unmarshal(r.Body, &acc)
		mu.Lock()
		orderOf[base+u] = acc.OrderID
		mu.Unlock()
		accepted.Add(1)
	})
	if accepted.Load() != 100 || len(orderOf) != 100 {
		t.Fatalf("%d accepted for %d buyers, want exactly 100", accepted.Load(), len(orderOf))
	}
	st := testenv.Store[store.Orders](t, a)
	testenv.Eventually(t, 20*time.Second, "each accepted order stored exactly once", func() bool {
		for u, id := range orderOf {
			orders, err := st.ListOrders(context.Background(), u, 0, 10)
			if err != nil {
				return false
			}
			n := 0
			for _, o := range orders {
				if o.OrderID == id {
					n++
				}
			}
			if n != 1 || len(orders) != 1 {
				return false
			}
		}
		return true
	})
	// Both hosts serve the sale: each runs sale-order instances in the one
	// queue group (NATS spreads the calls over them).
	for name, env := range map[string]*testenv.Env{"first": a, "second": b} {
		if st, ok := env.P.Host().Status().Functions["sale-order"]; !ok || st.Instances == 0 {
			t.Errorf("the %s host runs no sale-order instance", name)
		}
	}
}
