package orders_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	_ "github.com/surgefn/surge/functions/echo"
	_ "github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/store"
)

// manifestsDir holds the named manifests of the repository, unchanged.
func manifestsDir(t testing.TB, names ...string) string {
	return testenv.ManifestsDir(t, nil, names...)
}

// start runs a platform with the order functions (and echo) deployed.
func start(t testing.TB) *testenv.Env {
	t.Helper()
	dir := manifestsDir(t, "orders.yaml", "echo.yaml")
	return testenv.Start(t, func(o *platform.Options) { o.Manifests = dir })
}

// accepted is the 202 body of POST /v1/orders.
type accepted struct {
	OrderID    string `json:"order_id"`
	Status     string `json:"status"`
	TotalCents int64  `json:"total_cents"`
}

// listPage is the body of GET /v1/users/{user_id}/orders.
type listPage struct {
	UserID int64         `json:"user_id"`
	Page   int           `json:"page"`
	After  string        `json:"after"`
	Size   int           `json:"size"`
	Orders []store.Order `json:"orders"`
}

func orderBody(user int64, sku string, qty int, price int64) []byte {
	return fmt.Appendf(nil, `{"user_id":%d,"items":[{"sku":%q,"qty":%d,"price_cents":%d}],"currency":"CNY"}`, user, sku, qty, price)
}

// submitBody is an orders.submit message (docs/API.md section 4).
func submitBody(id string, user int64, qty int) []byte {
	return fmt.Appendf(nil, `{"order_id":%q,"user_id":%d,"items":[{"sku":"S-%d","qty":%d,"price_cents":150}],"currency":"USD"}`, id, user, qty, qty)
}

// errMessage returns the message of an error envelope.
func errMessage(t testing.TB, r *testenv.Response) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.Body, err)
	}
	return e.Error.Message
}

// postOrder creates an order over HTTP and returns its id.
func postOrder(t testing.TB, env *testenv.Env, body []byte, headers ...string) accepted {
	t.Helper()
	r := env.Do(t, "POST", "/v1/orders", body, headers...)
	if r.Status != 202 {
		t.Fatalf("POST /v1/orders = %d %s", r.Status, r.Body)
	}
	var a accepted
	r.JSON(t, &a)
	return a
}

// userOrders lists every stored order of a user, newest first.
func userOrders(t testing.TB, st store.Orders, user int64) []store.Order {
	t.Helper()
	orders, err := st.ListOrders(context.Background(), user, 0, 1_000_000)
	if err != nil {
		t.Fatalf("list orders of %d: %v", user, err)
	}
	return orders
}

// waitDrained waits until order-persist has handled every message of
// ORDERS (nothing pending, nothing awaiting an ack, the ack floor at the
// stream's last message).
func waitDrained(t testing.TB, js jetstream.JetStream, within time.Duration) {
	t.Helper()
	testenv.Eventually(t, within, "order-persist drained ORDERS", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := js.Consumer(ctx, "ORDERS", "order-persist")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		if err != nil || info.NumPending != 0 || info.NumAckPending != 0 {
			return false
		}
		// Nothing pending and nothing awaiting an ack is not enough: a
		// message whose ack wait ran out (a crashed host held it) waits
		// for redelivery in neither count. The ack floor reaching the
		// stream's last message says every one was handled.
		s, err := js.Stream(ctx, "ORDERS")
		return err == nil && info.AckFloor.Stream >= s.CachedInfo().State.LastSeq
	})
}

// ids returns the order ids of orders, in order.
func ids(orders []store.Order) []string {
	out := make([]string, len(orders))
	for i, o := range orders {
		out[i] = o.OrderID
	}
	return out
}

func short(ids []string) string {
	if len(ids) > 6 {
		return strings.Join(ids[:6], ",") + fmt.Sprintf(",... (%d)", len(ids))
	}
	return strings.Join(ids, ",")
}

// assertStoredExactly fails unless the store holds exactly want's orders
// per user, and returns how many it holds in all.
func assertStoredExactly(t *testing.T, st store.Orders, want map[int64][]string) int {
	t.Helper()
	total := 0
	for u, wantIDs := range want {
		got := ids(userOrders(t, st, u))
		total += len(got)
		slices.Sort(got)
		slices.Sort(wantIDs)
		if !slices.Equal(got, wantIDs) {
			t.Errorf("user %d: stored %d orders %s, want %d %s", u, len(got), short(got), len(wantIDs), short(wantIDs))
		}
	}
	return total
}
