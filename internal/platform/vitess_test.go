package platform_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	_ "github.com/surgefn/surge/functions/all"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/internal/vttest"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/store/vitess"
)

// vtgateAddr returns the test cluster's vtgate, skipping without one.
func vtgateAddr(t *testing.T) string {
	t.Helper()
	return vttest.VTGate(t)
}

// TestVitessOrderFlow runs the order flow on --store vitess: POST
// /v1/orders answers 202, order-persist writes the order to the keyspace,
// and GET /v1/orders/{id} and GET /v1/users/{id}/orders read it back.
func TestVitessOrderFlow(t *testing.T) {
	addr := vtgateAddr(t)
	dir := testenv.ManifestsDir(t, nil, "orders.yaml", "echo.yaml")
	env := testenv.Start(t, func(o *platform.Options) {
		o.Manifests = dir
		o.Store = "vitess"
		o.StoreConfig = fmt.Appendf(nil, `{"address":%q,"max_open_conns":16}`, addr)
	})
	if _, ok := env.P.Store().(*vitess.Store); !ok {
		t.Fatalf("platform store is %T, want *vitess.Store", env.P.Store())
	}
	if r := env.Do(t, "GET", "/readyz", nil); r.Status != 200 {
		t.Fatalf("GET /readyz = %d %s", r.Status, r.Body)
	}

	// The keyspace outlives the test: a fresh user has no orders yet.
	user := rand.Int64N(1<<53) + 1
	var placed []string
	for i, sku := range []string{"tea-1", "tea-2"} {
		r := env.Do(t, "POST", "/v1/orders", fmt.Appendf(nil,
			`{"user_id":%d,"items":[{"sku":%q,"qty":%d,"price_cents":1999}],"currency":"CNY"}`, user, sku, i+1))
		if r.Status != 202 {
			t.Fatalf("POST /v1/orders = %d %s", r.Status, r.Body)
		}
		var a struct {
			OrderID string `json:"order_id"`
		}
		r.JSON(t, &a)
		placed = append(placed, a.OrderID)
		time.Sleep(2 * time.Millisecond) // distinct created_at: the list order is known
	}

	var got store.Order
	testenv.Eventually(t, 5*time.Second, "GET /v1/orders/{id} = 200", func() bool {
		r := env.Do(t, "GET", "/v1/orders/"+placed[1], nil)
		if r.Status != 200 {
			return false
		}
		r.JSON(t, &got)
		return true
	})
	if got.OrderID != placed[1] || got.UserID != user || got.TotalCents != 2*1999 || got.Currency != "CNY" ||
		len(got.Items) != 1 || got.Items[0] != (store.Item{SKU: "tea-2", Qty: 2, PriceCents: 1999}) {
		t.Errorf("GET /v1/orders/%s = %+v", placed[1], got)
	}

	want := []string{placed[1], placed[0]} // newest first
	var page struct {
		Orders []store.Order `json:"orders"`
	}
	testenv.Eventually(t, 5*time.Second, "GET /v1/users/{id}/orders lists both", func() bool {
		r := env.Do(t, "GET", fmt.Sprintf("/v1/users/%d/orders", user), nil)
		page.Orders = nil
		r.JSON(t, &page)
		return r.Status == 200 && len(page.Orders) == len(want)
	})
	var listed []string
	for _, o := range page.Orders {
		listed = append(listed, o.OrderID)
	}
	if !slices.Equal(listed, want) {
		t.Errorf("GET /v1/users/%d/orders = %v, want %v", user, listed, want)
	}

	// The rows are in the keyspace, not in a cache: a store of its own
	// finds them.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := vitess.Open(ctx, vitess.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if stored, err := s.ListOrders(ctx, user, 0, 10); err != nil || len(stored) != 2 {
		t.Errorf("keyspace holds %d orders of user %d (%v), want 2", len(stored), user, err)
	}
}
