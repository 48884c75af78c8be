package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/store"
)

// TestSpikesAtThreeReplicas runs the seeds' two spike scenarios on a
// 3-node cluster, their buckets at 3 replicas: a flash sale of 100 units
// to 3,000 concurrent distinct buyers, each trying twice, sells exactly
// 100 (one per winner; each buyer's repeat, with the same Idempotency-Key,
// answers the same order or sold_out again), and each order is stored
// once, nobody else's; a red envelope of 10 shares raced by 50
// grabbers has exactly 10 winners whose shares sum to the total, repeats
// answer the same share, later grabs 410.
func TestSpikesAtThreeReplicas(t *testing.T) {
	c := cluster(t)
	e := c.Surge(t, nil, "orders.yaml", "sales.yaml", "envelopes.yaml")
	e.HTTP.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	e.HTTP.Timeout = 20 * time.Second

	t.Run("flash sale", func(t *testing.T) {
		now := time.Now().UTC()
		body := fmt.Appendf(nil, `{"sku":"R3","stock":100,"price_cents":999,"currency":"CNY","per_user":1,"starts_at":%q,"ends_at":%q}`,
			now.Add(-time.Minute).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
		testenv.Eventually(t, 20*time.Second, "sale created", func() bool {
			r, err := e.TryDo("PUT", "/v1/sales/r3", body, "Authorization: Bearer "+testenv.Token)
			return err == nil && r.Status == 200
		})
		for _, stream := range []string{"KV_SALES", "SALES_LEDGER"} {
			if n := replicasOf(t, c.JS(), stream); n != 3 {
				t.Fatalf("%s has %d replicas, want 3", stream, n)
			}
		}
		const buyers, workers = 3000, 48
		var mu sync.Mutex
		orderOf := map[int64]string{}
		var accepted, repeatsAccepted, other atomic.Int64
		answers := map[string]int{}
		began := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for u := next.Add(1); u <= buyers; u = next.Add(1) {
					user := 20_000 + u
					for try := range 2 {
						b := fmt.Appendf(nil, `{"user_id":%d,"qty":1}`, user)
						key := fmt.Sprintf("Idempotency-Key: r3-%d", user)
						r, err := e.TryDo("POST", "/v1/sales/r3/orders", b, key)
						// A burst the function cannot answer in time is shed
						// with 503 overloaded before it runs: retried.
						for n := 0; err == nil && r.Status == 503 && n < 500; n++ {
							time.Sleep(20 * time.Millisecond)
							r, err = e.TryDo("POST", "/v1/sales/r3/orders", b, key)
						}
						if err != nil {
							other.Add(1)
							t.Logf("user %d: %v", user, err)
							continue
						}
						mu.Lock()
						answers[fmt.Sprintf("try %d: %d %s", try, r.Status, r.ErrorCode())]++
						var a struct {
							OrderID string `json:"order_id"`
						}
						_ = json.Unmarshal(r.Body, &a)
						switch {
						case r.Status == 202 && try == 0:
							orderOf[user] = a.OrderID
							accepted.Add(1)
						case r.Status == 202 && a.OrderID == orderOf[user]:
							repeatsAccepted.Add(1)
						case r.Status == 409 && r.ErrorCode() == "sold_out" && orderOf[user] == "":
						default:
							other.Add(1)
							t.Logf("user %d try %d: %d %s", user, try, r.Status, r.Body)
						}
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		t.Logf("%d buyers x 2 in %s: %v", buyers, time.Since(began).Round(time.Millisecond), answers)
		if accepted.Load() != 100 || len(orderOf) != 100 || repeatsAccepted.Load() != 100 || other.Load() != 0 {
			t.Fatalf("%d accepted (%d buyers), %d repeats answered the same order, %d other; want exactly 100 and 100",
				accepted.Load(), len(orderOf), repeatsAccepted.Load(), other.Load())
		}
		var v struct {
			Sold, Remaining int64
			Status          string
		}
		e.Do(t, "GET", "/v1/sales/r3", nil).JSON(t, &v)
		if v.Sold != 100 || v.Remaining != 0 || v.Status != "sold_out" {
			t.Errorf("GET sale = %+v, want 100 sold, sold_out", v)
		}
		// The sale's orders are the ledger's take messages.
		waitConsumed(t, c.JS(), "SALES_LEDGER", "sale-persist", 30*time.Second)
		st := testenv.Store[store.Orders](t, e)
		stored := 0
		for u := int64(1); u <= buyers; u++ {
			user := 20_000 + u
			orders, err := st.ListOrders(context.Background(), user, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			stored += len(orders)
			if id, won := orderOf[user]; won && (len(orders) != 1 || orders[0].OrderID != id || orders[0].TotalCents != 999) ||
				!won && len(orders) != 0 {
				t.Errorf("user %d: stored %+v, want exactly its accepted order %q", user, orders, id)
			}
		}
		if stored != 100 {
			t.Errorf("%d orders stored, want 100", stored)
		}
	})

	t.Run("red envelope", func(t *testing.T) {
		const total, shares, grabbers = 10000, 10, 50
		var created struct {
			EnvelopeID string `json:"envelope_id"`
		}
		testenv.Eventually(t, 20*time.Second, "envelope created", func() bool {
			r, err := e.TryDo("POST", "/v1/envelopes", fmt.Appendf(nil, `{"sender_id":1,"total_cents":%d,"count":%d}`, total, shares))
			return err == nil && r.Status == 201 && json.Unmarshal(r.Body, &created) == nil
		})
		id := created.EnvelopeID
		type grab struct {
			status int
			amount int64
			first  bool
		}
		grabOf := func(user int64) grab {
			r, err := e.TryDo("POST", "/v1/envelopes/"+id+"/grab", fmt.Appendf(nil, `{"user_id":%d}`, user))
			if err != nil {
				return grab{}
			}
			var a struct {
				AmountCents int64 `json:"amount_cents"`
				First       bool  `json:"first"`
			}
			_ = json.Unmarshal(r.Body, &a)
			return grab{r.Status, a.AmountCents, a.First}
		}
		var mu sync.Mutex
		winners := map[int64]int64{}
		var wg sync.WaitGroup
		release := make(chan struct{})
		for i := range grabbers {
			wg.Go(func() {
				<-release
				u := int64(3000 + i)
				g := grabOf(u)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case g.status == 200 && g.first:
					winners[u] = g.amount
				case g.status != 410:
					t.Errorf("grab of %d = %+v, want 200 first or 410", u, g)
				}
			})
		}
		close(release)
		wg.Wait()
		if n := replicasOf(t, c.JS(), "KV_ENVELOPES"); n != 3 {
			t.Errorf("KV_ENVELOPES has %d replicas, want 3", n)
		}
		sum := int64(0)
		for u, amount := range winners {
			sum += amount
			if amount < 1 {
				t.Errorf("user %d won %d cents, want at least 1", u, amount)
			}
			if g := grabOf(u); g.status != 200 || g.first || g.amount != amount {
				t.Errorf("repeat of %d = %+v, want 200 %d first:false", u, g, amount)
			}
		}
		if len(winners) != shares || sum != total {
			t.Fatalf("%d winners summing to %d, want %d summing to %d", len(winners), sum, shares, total)
		}
		if g := grabOf(9999); g.status != 410 {
			t.Errorf("late grab = %+v, want 410", g)
		}
		var got struct {
			Taken          int   `json:"taken"`
			RemainingCents int64 `json:"remaining_cents"`
		}
		e.Do(t, "GET", "/v1/envelopes/"+id, nil).JSON(t, &got)
		if got.Taken != shares || got.RemainingCents != 0 {
			t.Errorf("GET envelope = %+v, want %d taken, 0 remaining", got, shares)
		}
		st := testenv.Store[store.Envelopes](t, e)
		testenv.Eventually(t, 20*time.Second, "the 10 grabs stored as answered", func() bool {
			grabs, err := st.ListGrabs(context.Background(), id)
			if err != nil || len(grabs) != shares {
				return false
			}
			for _, g := range grabs {
				if winners[g.UserID] != g.AmountCents {
					return false
				}
			}
			return true
		})
	})
}
