package sales_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/functions/sales"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/stock"
	"github.com/surgefn/surge/runtime/store"
)

const admin = "Authorization: Bearer " + testenv.Token

// start runs a platform with the order and sale functions; edit (may be
// nil) changes the manifests.
func start(t testing.TB, edit func(fn *manifests.Function)) *testenv.Env {
	t.Helper()
	dir := testenv.ManifestsDir(t, edit, "orders.yaml", "sales.yaml")
	env := testenv.Start(t, func(o *platform.Options) {
		o.Manifests = dir
		testenv.WithUserAuth(t, o)
	})
	env.HTTP.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	return env
}

func saleBody(stock int64, perUser int, starts, ends time.Time) []byte {
	return fmt.Appendf(nil, `{"sku":"P1","stock":%d,"price_cents":999,"currency":"CNY","per_user":%d,"starts_at":%q,"ends_at":%q}`,
		stock, perUser, starts.Format(time.RFC3339), ends.Format(time.RFC3339))
}

// openSale creates sale id, open for an hour.
func openSale(t testing.TB, env *testenv.Env, id string, stock int64, perUser int) {
	t.Helper()
	now := time.Now()
	r := env.Do(t, "PUT", "/v1/sales/"+id, saleBody(stock, perUser, now.Add(-time.Minute), now.Add(time.Hour)), admin)
	if r.Status != 200 {
		t.Fatalf("PUT sale = %d %s", r.Status, r.Body)
	}
}

func getSale(t testing.TB, env *testenv.Env, id string) sales.View {
	t.Helper()
	r := env.Do(t, "GET", "/v1/sales/"+id, nil)
	if r.Status != 200 {
		t.Fatalf("GET sale = %d %s", r.Status, r.Body)
	}
	var v sales.View
	r.JSON(t, &v)
	return v
}

func buy(user, qty int64) []byte { return fmt.Appendf(nil, `{"user_id":%d,"qty":%d}`, user, qty) }

func errMessage(r *testenv.Response) string {
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Message
}

func TestSaleRoutes(t *testing.T) {
	env := start(t, nil)
	now := time.Now()
	good := saleBody(3, 2, now.Add(-time.Minute), now.Add(time.Hour))
	if r := env.Do(t, "PUT", "/v1/sales/s1", good); r.Status != 401 {
		t.Errorf("PUT without the admin token = %d, want 401", r.Status)
	}
	for _, tc := range []struct {
		name, path, body, wantField string
	}{
		{"bad id", "/v1/sales/a.b", string(good), "sale_id"},
		{"unknown field", "/v1/sales/s1", `{"sku":"P1","colour":1}`, "colour"},
		{"no sku", "/v1/sales/s1", `{"stock":1}`, "sku"},
		{"negative stock", "/v1/sales/s1", `{"sku":"P1","stock":-1}`, "stock"},
		{"stock type", "/v1/sales/s1", `{"sku":"P1","stock":"x"}`, "stock"},
		{"price", "/v1/sales/s1", `{"sku":"P1","stock":1,"price_cents":-5}`, "price_cents"},
		{"currency", "/v1/sales/s1", `{"sku":"P1","stock":1,"price_cents":5,"currency":"cny"}`, "currency"},
		{"per_user", "/v1/sales/s1", `{"sku":"P1","stock":1,"price_cents":5,"currency":"CNY","per_user":0}`, "per_user"},
		{"starts_at", "/v1/sales/s1", `{"sku":"P1","stock":1,"price_cents":5,"currency":"CNY","per_user":1,"starts_at":"soon"}`, "starts_at"},
		{"ends_at before", "/v1/sales/s1", `{"sku":"P1","stock":1,"price_cents":5,"currency":"CNY","per_user":1,"starts_at":"2026-01-02T00:00:00Z","ends_at":"2026-01-01T00:00:00Z"}`, "ends_at"},
	} {
		t.Run("put/"+tc.name, func(t *testing.T) {
			r := env.Do(t, "PUT", tc.path, []byte(tc.body), admin)
			if r.Status != 400 || r.ErrorCode() != "invalid_request" || !startsWith(errMessage(r), tc.wantField+":") {
				t.Errorf("= %d %s, want 400 naming %s", r.Status, r.Body, tc.wantField)
			}
		})
	}
	if r := env.Do(t, "GET", "/v1/sales/nope", nil); r.Status != 404 {
		t.Errorf("GET unknown sale = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/v1/sales/nope/orders", buy(1, 1)); r.Status != 404 {
		t.Errorf("order in an unknown sale = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "PUT", "/v1/sales/s1", good, admin); r.Status != 200 {
		t.Fatalf("PUT = %d %s", r.Status, r.Body)
	}
	for _, tc := range []struct{ name, body, wantField string }{
		{"user_id", `{"user_id":0,"qty":1}`, "user_id"},
		{"qty", `{"user_id":1,"qty":0}`, "qty"},
		{"unknown", `{"user_id":1,"qty":1,"coupon":"x"}`, "coupon"},
		{"type", `{"user_id":"1","qty":1}`, "user_id"},
	} {
		t.Run("order/"+tc.name, func(t *testing.T) {
			r := env.Do(t, "POST", "/v1/sales/s1/orders", []byte(tc.body))
			if r.Status != 400 || !startsWith(errMessage(r), tc.wantField+":") {
				t.Errorf("= %d %s, want 400 naming %s", r.Status, r.Body, tc.wantField)
			}
		})
	}
	// User 1 buys 2 (per_user 2), then is at the limit; user 2 buys the last.
	r := env.Do(t, "POST", "/v1/sales/s1/orders", buy(1, 2), "Idempotency-Key: k1")
	var a sales.Accepted
	if r.Status != 202 {
		t.Fatalf("order = %d %s", r.Status, r.Body)
	}
	r.JSON(t, &a)
	if a.Status != "accepted" || a.SaleID != "s1" || a.TotalCents != 1998 || a.OrderID != "s1-1-1" {
		t.Errorf("accepted %+v", a)
	}
	if r := env.Do(t, "POST", "/v1/sales/s1/orders", buy(1, 2), "Idempotency-Key: k1"); r.Status != 202 || string(r.Body) != mustJSON(a) {
		t.Errorf("retry with the same key = %d %s, want %s", r.Status, r.Body, mustJSON(a))
	}
	if r := env.Do(t, "POST", "/v1/sales/s1/orders", buy(1, 1)); r.Status != 409 || r.ErrorCode() != "limit_reached" {
		t.Errorf("over per_user = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/v1/sales/s1/orders", buy(2, 1)); r.Status != 202 {
		t.Errorf("last unit = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/v1/sales/s1/orders", buy(3, 1)); r.Status != 409 || r.ErrorCode() != "sold_out" {
		t.Errorf("after the last unit = %d %s", r.Status, r.Body)
	}
	if v := getSale(t, env, "s1"); v != (sales.View{SaleID: "s1", SKU: "P1", Stock: 3, Sold: 3, Remaining: 0, Status: "sold_out"}) {
		t.Errorf("GET = %+v", v)
	}
	// Lowering below what is sold is 409; raising opens the sale again.
	if r := env.Do(t, "PUT", "/v1/sales/s1", saleBody(2, 2, now.Add(-time.Minute), now.Add(time.Hour)), admin); r.Status != 409 || r.ErrorCode() != "stock_below_sold" {
		t.Errorf("stock below sold = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "PUT", "/v1/sales/s1", saleBody(10, 2, now.Add(-time.Minute), now.Add(time.Hour)), admin); r.Status != 200 {
		t.Errorf("raise = %d %s", r.Status, r.Body)
	}
	if v := getSale(t, env, "s1"); v.Stock != 10 || v.Remaining != 7 || v.Status != "open" {
		t.Errorf("after the raise: %+v", v)
	}
	// Not open: scheduled and ended.
	env.Do(t, "PUT", "/v1/sales/later", saleBody(5, 1, now.Add(time.Hour), now.Add(2*time.Hour)), admin)
	env.Do(t, "PUT", "/v1/sales/past", saleBody(5, 1, now.Add(-2*time.Hour), now.Add(-time.Hour)), admin)
	for _, id := range []string{"later", "past"} {
		if r := env.Do(t, "POST", "/v1/sales/"+id+"/orders", buy(1, 1)); r.Status != 409 || r.ErrorCode() != "sale_not_open" {
			t.Errorf("order in %s = %d %s", id, r.Status, r.Body)
		}
	}
	if v := getSale(t, env, "later"); v.Status != "scheduled" {
		t.Errorf("later: %+v", v)
	}
	if v := getSale(t, env, "past"); v.Status != "ended" {
		t.Errorf("past: %+v", v)
	}
	// The orders are in the pipeline: stored once, readable by id.
	testenv.Eventually(t, 5*time.Second, "s1-1-1 stored", func() bool {
		r := env.Do(t, "GET", "/v1/orders/s1-1-1", nil)
		return r.Status == 200
	})
	st := testenv.Store[store.Orders](t, env)
	o, err := st.GetOrder(context.Background(), "s1-1-1")
	if err != nil || o.UserID != 1 || o.TotalCents != 1998 || len(o.Items) != 1 || o.Items[0].SKU != "P1" || o.Items[0].Qty != 2 {
		t.Errorf("stored %+v, %v", o, err)
	}
}

func TestSaleAuthAndRateLimit(t *testing.T) {
	env := start(t, func(fn *manifests.Function) {
		if fn.Metadata.Name == "sale-order" {
			fn.Spec.HTTP.Auth = "user"
			fn.Spec.Config = json.RawMessage(`{"userLimit":3,"userWindow":"1m"}`)
		}
	})
	openSale(t, env, "a1", 100, 1)
	tok := testenv.UserToken(t, 5)
	if r := env.Do(t, "POST", "/v1/sales/a1/orders", buy(6, 1), tok); r.Status != 403 {
		t.Errorf("another user's purchase = %d %s, want 403", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/v1/sales/a1/orders", buy(5, 1), tok); r.Status != 202 {
		t.Errorf("own purchase = %d %s", r.Status, r.Body)
	}
	r := env.Do(t, "POST", "/v1/sales/a1/orders", buy(5, 1), tok)
	if r.Status != 409 {
		t.Errorf("second = %d %s, want 409 limit_reached", r.Status, r.Body)
	}
	env.Do(t, "POST", "/v1/sales/a1/orders", buy(5, 1), tok) // the third of the window
	if r := env.Do(t, "POST", "/v1/sales/a1/orders", buy(5, 1), tok); r.Status != 429 || r.ErrorCode() != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Errorf("fourth call in the window = %d %s Retry-After %q, want 429", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
}

// TestFlashSale: 100 units, many distinct buyers at once, each trying
// twice: exactly 100 accepted, each stored once, nobody over per_user.
func TestFlashSale(t *testing.T) {
	buyers, workers := 5000, 64
	if testing.Short() {
		buyers = 1000
	}
	env := start(t, nil)
	openSale(t, env, "flash", 100, 1)
	var accepted, soldOut, limit, other atomic.Int64
	var mu sync.Mutex
	orderOf := map[int64]string{}
	began := time.Now()
	eachBuyer(buyers, workers, func(u int64) {
		for try := range 2 {
			r, err := env.TryDo("POST", "/v1/sales/flash/orders", buy(1000+u, 1))
			// The gateway sheds a burst beyond what the function answers
			// in time with 503 overloaded (never run): the buyer retries,
			// as its Retry-After asks.
			for n := 0; err == nil && r.Status == 503 && r.ErrorCode() == "overloaded" && n < 500; n++ {
				time.Sleep(20 * time.Millisecond)
				r, err = env.TryDo("POST", "/v1/sales/flash/orders", buy(1000+u, 1))
			}
			switch {
			case err != nil:
				other.Add(1)
			case r.Status == 202:
				var a sales.Accepted
				_ = json.Unmarshal(r.Body, &a)
				mu.Lock()
				if prev, ok := orderOf[u]; ok && prev != a.OrderID {
					t.Errorf("user %d: two orders %s and %s", u, prev, a.OrderID)
				}
				orderOf[u] = a.OrderID
				mu.Unlock()
				if try == 0 {
					accepted.Add(1)
				}
			case r.ErrorCode() == "sold_out":
				soldOut.Add(1)
			case r.ErrorCode() == "limit_reached":
				limit.Add(1)
			default:
				other.Add(1)
				t.Logf("user %d: %d %s", u, r.Status, r.Body)
			}
		}
	})
	took := time.Since(began)
	t.Logf("%d buyers x 2 attempts in %s (%.0f calls/s): %d accepted, %d sold_out, %d limit_reached, %d other",
		buyers, took.Round(time.Millisecond), float64(2*buyers)/took.Seconds(), accepted.Load(), soldOut.Load(), limit.Load(), other.Load())
	if accepted.Load() != 100 || len(orderOf) != 100 || other.Load() != 0 {
		t.Fatalf("%d accepted (%d buyers), %d other; want exactly 100", accepted.Load(), len(orderOf), other.Load())
	}
	if v := getSale(t, env, "flash"); v.Sold != 100 || v.Remaining != 0 || v.Status != "sold_out" {
		t.Errorf("GET = %+v", v)
	}
	st := testenv.Store[store.Orders](t, env)
	testenv.Eventually(t, 10*time.Second, "100 orders stored", func() bool {
		for _, id := range orderOf {
			if _, err := st.GetOrder(context.Background(), id); errors.Is(err, store.ErrNotFound) {
				return false
			}
		}
		return true
	})
	for u, id := range orderOf {
		orders, err := st.ListOrders(context.Background(), 1000+u, 0, 100)
		if err != nil || len(orders) != 1 || orders[0].OrderID != id {
			t.Errorf("user %d: stored %d orders (%v), want exactly %s", 1000+u, len(orders), err, id)
		}
	}
}

func startsWith(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSaleIPLimit: with ipLimit set, the client address counts, a forged
// Surge-Client-Ip does not; behind a trusted proxy, X-Forwarded-For does.
func TestSaleIPLimit(t *testing.T) {
	edit := func(fn *manifests.Function) {
		if fn.Metadata.Name == "sale-order" {
			fn.Spec.Config = json.RawMessage(`{"ipLimit":2,"ipWindow":"1m"}`)
		}
	}
	for _, tc := range []struct {
		name    string
		proxies string
		header  string // %d is the call's number
		want429 bool
	}{
		{name: "forged Surge-Client-Ip is dropped", header: "Surge-Client-Ip: 198.51.100.%d", want429: true},
		{name: "X-Forwarded-For of an untrusted peer", header: "X-Forwarded-For: 198.51.100.%d", want429: true},
		{name: "X-Forwarded-For of a trusted proxy", proxies: "127.0.0.1/32", header: "X-Forwarded-For: 198.51.100.%d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.ManifestsDir(t, edit, "orders.yaml", "sales.yaml")
			env := testenv.Start(t, func(o *platform.Options) { o.Manifests = dir; o.TrustedProxies = tc.proxies })
			openSale(t, env, "ip", 10, 1)
			var last *testenv.Response
			for i := range 3 {
				last = env.Do(t, "POST", "/v1/sales/ip/orders", buy(int64(100+i), 1), fmt.Sprintf(tc.header, i))
			}
			if got := last.Status == 429; got != tc.want429 || (got && last.Header.Get("Retry-After") == "") {
				t.Errorf("third call = %d %s Retry-After %q, want 429: %v", last.Status, last.Body, last.Header.Get("Retry-After"), tc.want429)
			}
		})
	}
}

// eachBuyer calls buy for users 1..n from workers goroutines, and returns
// when every call returned.
func eachBuyer(n, workers int, buy func(u int64)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := next.Add(1); u <= int64(n); u = next.Add(1) {
				buy(u)
			}
		}()
	}
	wg.Wait()
}

// TestSaleAnsweredByItsRetry: a purchase whose take reached the ledger
// but whose call died before answering (made here by another process's
// ledger, as a killed host's would have) is stored by sale-persist from
// the take message itself, and the buyer's keyed retry gets that order as
// its 202 without taking more stock.
func TestSaleAnsweredByItsRetry(t *testing.T) {
	env := start(t, nil)
	openSale(t, env, "rec", 5, 1)
	id := sales.OrderID("rec", 77, 1)
	other := stock.NewLedger(env.JS, stock.LedgerConfig{Stream: sales.LedgerStream, Prefix: sales.LedgerPrefix,
		Encode: func(_ string, takes []stock.Taken) ([]byte, error) {
			return fmt.Appendf(nil, `[{"order_id":%q,"user_id":77,"items":[{"sku":"P1","qty":1,"price_cents":999}],"currency":"CNY","total_cents":999}]`,
				takes[0].Claim), nil
		}})
	defer other.Close()
	c, err := other.Reserve(context.Background(), "rec", stock.Take{Holder: "77", Units: 1, Limit: 1, Key: "retry-77"})
	if err != nil || c.ID != id {
		t.Fatalf("take = %+v, %v; want claim %s", c, err, id)
	}
	st := testenv.Store[store.Orders](t, env)
	testenv.Eventually(t, 10*time.Second, "sale-persist stored "+id, func() bool {
		_, err := st.GetOrder(context.Background(), id)
		return err == nil
	})
	r := env.Do(t, "POST", "/v1/sales/rec/orders", buy(77, 1), "Idempotency-Key: retry-77")
	var a sales.Accepted
	if r.Status != 202 {
		t.Fatalf("keyed retry = %d %s, want 202 with %s", r.Status, r.Body, id)
	}
	if r.JSON(t, &a); a.OrderID != id || a.TotalCents != 999 {
		t.Errorf("keyed retry got %+v, want %s for 999", a, id)
	}
	if v := getSale(t, env, "rec"); v.Sold != 1 {
		t.Errorf("sold %d, want 1: nothing taken twice", v.Sold)
	}
	if r := env.Do(t, "POST", "/v1/sales/rec/orders", buy(77, 1)); r.ErrorCode() != "limit_reached" {
		t.Errorf("another purchase = %d %s, want limit_reached", r.Status, r.Body)
	}
	if orders, err := st.ListOrders(context.Background(), 77, 0, 10); err != nil || len(orders) != 1 {
		t.Errorf("user 77 has %d orders (%v), want 1", len(orders), err)
	}
}
