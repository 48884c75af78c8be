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
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/store"
)

// crashShards is the store config of both runtime hosts of TestSaleCrash.
const crashShards = `{"shards":4}`

// TestSaleCrashHelperRuntime is not a test: it is the runtime host that
// TestSaleCrash starts in a child process and kills with SIGKILL.
func TestSaleCrashHelperRuntime(t *testing.T) { testenv.ServeChildRuntime(t) }

// TestSaleCrash: the runtime host serving a sale of 100 units is killed
// with SIGKILL mid-sale while 1,000 buyers keep trying (each retrying until
// it gets a 202 or a 409); a new host takes over. Never more than 100
// accepted, and the units taken == the orders stored == the 202s.
func TestSaleCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: runs a child process")
	}
	dir := testenv.ManifestsDir(t, func(fn *manifests.Function) {
		if fn.Metadata.Name == "sale-order" {
			fn.Spec.Config = json.RawMessage(`{"userLimit":1000}`)
		}
	}, "orders.yaml", "sales.yaml")
	n := testenv.StartWith(t, platform.Options{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1", HTTPAddr: "127.0.0.1:0",
		Manifests: dir, AdminToken: testenv.Token, Logger: testenv.Logger(t)})
	n.HTTP.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	n.HTTP.Timeout = 10 * time.Second
	rtData := t.TempDir()
	child := testenv.ChildRuntime(t, "TestSaleCrashHelperRuntime", n, rtData, crashShards)
	testenv.Eventually(t, 10*time.Second, "sale-put served", func() bool {
		now := time.Now()
		r, err := n.TryDo("PUT", "/v1/sales/crash", saleBody(100, 1, now.Add(-time.Minute), now.Add(time.Hour)), admin)
		return err == nil && r.Status == 200
	})

	const buyers, workers = 1000, 32
	var accepted atomic.Int64
	var mu sync.Mutex
	orderOf := map[int64]string{}
	var wg sync.WaitGroup
	wg.Add(1)
	// Buyers arrive at about 200 a second, so that the 100 units sell over
	// about half a second and the kill below lands mid-sale (the ledger
	// sells a burst of buyers in a few milliseconds).
	arrivals := time.NewTicker(5 * time.Millisecond)
	defer arrivals.Stop()
	go func() {
		defer wg.Done()
		eachBuyer(buyers, workers, func(u int64) {
			<-arrivals.C
			deadline := time.Now().Add(40 * time.Second)
			for time.Now().Before(deadline) { // until a definite answer
				r, err := n.TryDo("POST", "/v1/sales/crash/orders", buy(5000+u, 1), fmt.Sprintf("Idempotency-Key: b-%d", u))
				if err == nil && r.Status == 202 {
					var a sales.Accepted
					_ = json.Unmarshal(r.Body, &a)
					mu.Lock()
					orderOf[5000+u] = a.OrderID
					mu.Unlock()
					accepted.Add(1)
					break
				}
				if err == nil && r.Status == 409 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}()
	testenv.Eventually(t, 20*time.Second, "30 accepted before the crash", func() bool { return accepted.Load() >= 30 })
	_ = child.Process.Kill() // SIGKILL, mid-sale
	_ = child.Wait()
	atKill := accepted.Load()
	t.Logf("killed the runtime host after %d accepted", atKill)
	if atKill >= 100 {
		t.Fatalf("the sale was sold out before the kill (%d accepted): not a crash mid-sale", atKill)
	}
	r := testenv.StartWith(t, platform.Options{NATSURL: n.P.NATSURL(), NATSAuth: n.P.NATSAuth(), DataDir: rtData, Runtime: true,
		StoreConfig: json.RawMessage(crashShards), Logger: testenv.Logger(t)})
	wg.Wait()
	v := getSale(t, n, "crash")
	t.Logf("after the restart: %d accepted, sale %+v", accepted.Load(), v)
	if accepted.Load() > 100 || int64(len(orderOf)) != accepted.Load() {
		t.Fatalf("%d accepted (%d buyers), want at most 100, one each", accepted.Load(), len(orderOf))
	}
	// Every 202 is stored exactly once, and the store holds exactly as
	// many orders as units were taken.
	st := testenv.Store[store.Orders](t, r)
	stored := 0
	testenv.Eventually(t, 20*time.Second, "stock taken == orders stored, every 202 stored once", func() bool {
		stored = 0
		for u := int64(5001); u <= 5000+buyers; u++ {
			orders, err := st.ListOrders(context.Background(), u, 0, 10)
			if err != nil || len(orders) > 1 {
				return false
			}
			if id, ok := orderOf[u]; ok && (len(orders) != 1 || orders[0].OrderID != id) {
				return false
			}
			stored += len(orders)
		}
		return int64(stored) == v.Sold
	})
	t.Logf("stock taken %d, orders stored %d, 202s %d", v.Sold, stored, accepted.Load())
	// Every buyer retried with its Idempotency-Key until a definite
	// answer, so every take reached its buyer as a 202 (a take whose call
	// was killed is replayed to its retry).
	if accepted.Load() != v.Sold {
		t.Errorf("%d 202s for %d units taken", accepted.Load(), v.Sold)
	}
}
