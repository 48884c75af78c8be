package sales_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgefn/surge/functions/sales"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/store"
)

// TestSaleTwoHosts: two runtime hosts (each with its own buntdb store, as
// two machines without a shared store would have) serve one sale: the
// stock lives in KV, so exactly 100 units are sold across both, and each
// order is stored once in one of the two stores.
func TestSaleTwoHosts(t *testing.T) {
	a := start(t, nil)
	b := testenv.StartWith(t, platform.Options{NATSURL: a.P.NATSURL(), NATSAuth: a.P.NATSAuth(), DataDir: t.TempDir(),
		Runtime: true, StoreConfig: json.RawMessage(`{"shards":4}`), Logger: testenv.Logger(t)})
	testenv.Eventually(t, 10*time.Second, "sale-order on the second host", func() bool {
		st, ok := b.P.Host().Status().Functions["sale-order"]
		return ok && st.Revision != ""
	})
	openSale(t, a, "two", 100, 1)
	const buyers = 2000
	var accepted atomic.Int64
	var mu sync.Mutex
	orderOf := map[int64]string{}
	eachBuyer(buyers, 64, func(u int64) {
		r, err := a.TryDo("POST", "/v1/sales/two/orders", buy(9000+u, 1))
		if err != nil || r.Status != http.StatusAccepted {
			return
		}
		var acc sales.Accepted
		_ = json.Unmarshal(r.Body, &acc)
		mu.Lock()
		orderOf[9000+u] = acc.OrderID
		mu.Unlock()
		accepted.Add(1)
	})
	if accepted.Load() != 100 || len(orderOf) != 100 {
		t.Fatalf("%d accepted for %d buyers, want exactly 100", accepted.Load(), len(orderOf))
	}
	stores := []store.Orders{testenv.Store[store.Orders](t, a), testenv.Store[store.Orders](t, b)}
	perStore := make([]int, 2)
	testenv.Eventually(t, 15*time.Second, "each accepted order stored exactly once across the two stores", func() bool {
		perStore[0], perStore[1] = 0, 0
		for u, id := range orderOf {
			n := 0
			for i, st := range stores {
				orders, err := st.ListOrders(context.Background(), u, 0, 10)
				if err != nil {
					return false
				}
				for _, o := range orders {
					if o.OrderID == id {
						n++
						perStore[i]++
					}
				}
			}
			if n != 1 {
				return false
			}
		}
		return true
	})
	t.Logf("orders stored: %d by the first host, %d by the second", perStore[0], perStore[1])
}
