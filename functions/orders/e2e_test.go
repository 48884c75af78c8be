package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

func TestOrderFlow(t *testing.T) {
	testOrderFlow(t, start(t))
}

func testOrderFlow(t *testing.T, env *testenv.Env) {
	const user = 1001

	a := postOrder(t, env, orderBody(user, "A1", 2, 1999))
	accepted := time.Now()
	if len(a.OrderID) != 26 || a.Status != "accepted" || a.TotalCents != 3998 {
		t.Fatalf("202 body = %+v", a)
	}

	// Readable within 1 s of acceptance.
	var got *testenv.Response
	testenv.Eventually(t, time.Second, "GET /v1/orders/{id} within 1s", func() bool {
		got = env.Do(t, "GET", "/v1/orders/"+a.OrderID, nil)
		return got.Status == 200
	})
	t.Logf("order readable %s after the 202", time.Since(accepted).Round(time.Millisecond))
	var fields map[string]json.RawMessage
	got.JSON(t, &fields)
	for _, k := range []string{"order_id", "user_id", "items", "total_cents", "currency", "status", "created_at"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("stored order lacks %q: %s", k, got.Body)
		}
	}
	var o store.Order
	got.JSON(t, &o)
	if o.OrderID != a.OrderID || o.UserID != user || o.TotalCents != 3998 || o.Currency != "CNY" || o.Status != "accepted" ||
		len(o.Items) != 1 || o.Items[0] != (store.Item{SKU: "A1", Qty: 2, PriceCents: 1999}) ||
		time.Since(o.CreatedAt) > time.Minute || time.Until(o.CreatedAt) > time.Second {
		t.Errorf("stored order = %+v", o)
	}

	// Page 1 shows it, and is refreshed after a second order.
	listFirst := func(want ...string) {
		t.Helper()
		var p listPage
		testenv.Eventually(t, 3*time.Second, "page 1 = "+strings.Join(want, ","), func() bool {
			r := env.Do(t, "GET", fmt.Sprintf("/v1/users/%d/orders", user), nil)
			p = listPage{}
			r.JSON(t, &p)
			return r.Status == 200 && slices.Equal(ids(p.Orders), want)
		})
		if p.UserID != user || p.Page != 1 || p.Size != 20 {
			t.Errorf("page header = %d/%d/%d", p.UserID, p.Page, p.Size)
		}
	}
	listFirst(a.OrderID)
	b := postOrder(t, env, orderBody(user, "B2", 1, 500))
	listFirst(b.OrderID, a.OrderID)
}

func TestOrderPages(t *testing.T) {
	env := start(t)
	const user = 1002
	var created []string // oldest first
	for i := range 25 {
		created = append(created, postOrder(t, env, orderBody(user, fmt.Sprintf("P%d", i), 1, int64(100+i))).OrderID)
	}
	st := testenv.Store[store.Orders](t, env)
	testenv.Eventually(t, 3*time.Second, "25 orders stored", func() bool { return len(userOrders(t, st, user)) == 25 })
	// Every batch acked: its page refresh round is done (a round may trail
	// the store by the persist config's cacheInterval).
	waitDrained(t, env.JS, 3*time.Second)
	newest := slices.Clone(created)
	slices.Reverse(newest)
	if got := ids(userOrders(t, st, user)); !slices.Equal(got, newest) {
		t.Fatalf("store order %s, want acceptance order reversed %s", short(got), short(newest))
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", newest[:20]}, // page 1: hot cache
		{"?size=5", newest[:5]},
		{"?page=2", newest[20:]}, // store
		{"?page=2&size=10", newest[10:20]},
		{"?page=3", []string{}},
		{"?page=1&size=50", newest},
		{"?page=999999999999", []string{}},
		{"?after=" + newest[4] + "&size=10", newest[5:15]}, // keyset: from the row on
		{"?after=" + newest[19], newest[20:]},
		{"?after=" + newest[24], []string{}},
		{"?after=", newest[:20]}, // empty: the first page
	}
	for _, tc := range tests {
		r := env.Do(t, "GET", fmt.Sprintf("/v1/users/%d/orders%s", user, tc.query), nil)
		var p listPage
		r.JSON(t, &p)
		if r.Status != 200 || !slices.Equal(ids(p.Orders), tc.want) || p.Orders == nil {
			t.Errorf("%s: %d %s, want %s", tc.query, r.Status, short(ids(p.Orders)), short(tc.want))
		}
		q, _ := url.ParseQuery(strings.TrimPrefix(tc.query, "?"))
		if after := q.Get("after"); after != "" && (p.After != after || p.Page != 0) {
			t.Errorf("%s: after %q page %d, want after %q and no page", tc.query, p.After, p.Page, after)
		}
	}
	// Paging through with after, four at a time, walks the whole list once.
	var got []string
	for after := ""; ; {
		r := env.Do(t, "GET", fmt.Sprintf("/v1/users/%d/orders?size=4&after=%s", user, after), nil)
		var p listPage
		r.JSON(t, &p)
		if r.Status != 200 {
			t.Fatalf("after %q: %d %s", after, r.Status, r.Body)
		}
		got = append(got, ids(p.Orders)...)
		if len(p.Orders) < 4 {
			break
		}
		after = p.Orders[len(p.Orders)-1].OrderID
	}
	if !slices.Equal(got, newest) {
		t.Errorf("paged with after: %s, want %s", short(got), short(newest))
	}
	// Another user's order is no place in this user's list.
	other := postOrder(t, env, orderBody(user+1, "Q", 1, 100)).OrderID
	testenv.Eventually(t, 3*time.Second, "the other user's order stored", func() bool { return len(userOrders(t, st, user+1)) == 1 })
	r := env.Do(t, "GET", fmt.Sprintf("/v1/users/%d/orders?after=%s", user, other), nil)
	if r.Status != 400 || !strings.HasPrefix(errMessage(t, r), "after: ") {
		t.Errorf("after another user's order: %d %s, want 400 after: ...", r.Status, r.Body)
	}
}

func TestOrderErrors(t *testing.T) {
	env := start(t)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantCode, wantPrefix     string
	}{
		{"malformed", "POST", "/v1/orders", `{"user_id":`, 400, "invalid_request", "body: "},
		{"unknown field", "POST", "/v1/orders", `{"user_id":1,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"CNY","coupon":1}`, 400, "invalid_request", "coupon: "},
		{"qty", "POST", "/v1/orders", string(orderBody(1, "A", 0, 1)), 400, "invalid_request", "items[0].qty: "},
		{"user", "POST", "/v1/orders", string(orderBody(0, "A", 1, 1)), 400, "invalid_request", "user_id: "},
		{"currency", "POST", "/v1/orders", `{"user_id":1,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"ABC"}`, 400, "invalid_request", "currency: "},
		{"missing order", "GET", "/v1/orders/01ARZ3NDEKTSV4RRFFQ69G5FAV", "", 404, "order_not_found", ""},
		{"bad order id", "GET", "/v1/orders/bad!id", "", 400, "invalid_request", "order_id: "},
		{"bad user", "GET", "/v1/users/0/orders", "", 400, "invalid_request", "user_id: "},
		{"bad page", "GET", "/v1/users/1/orders?page=0", "", 400, "invalid_request", "page: "},
		{"bad size", "GET", "/v1/users/1/orders?size=101", "", 400, "invalid_request", "size: "},
		{"size not a number", "GET", "/v1/users/1/orders?size=ten", "", 400, "invalid_request", "size: "},
		{"after unknown order", "GET", "/v1/users/1/orders?after=01ARZ3NDEKTSV4RRFFQ69G5FAV", "", 400, "invalid_request", "after: "},
		{"after bad order id", "GET", "/v1/users/1/orders?after=bad!id", "", 400, "invalid_request", "after: "},
		{"after with page", "GET", "/v1/users/1/orders?after=abc&page=2", "", 400, "invalid_request", "page: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := env.Do(t, tc.method, tc.path, []byte(tc.body))
			if r.Status != tc.wantStatus || r.ErrorCode() != tc.wantCode || !strings.HasPrefix(errMessage(t, r), tc.wantPrefix) {
				t.Errorf("%d %s, want %d %s %q...", r.Status, r.Body, tc.wantStatus, tc.wantCode, tc.wantPrefix)
			}
		})
	}
}

// TestOrderNATS: the request subjects answer with the same JSON, taking
// their input from headers or, without the parameter header, the body.
func TestOrderNATS(t *testing.T) {
	env := start(t)
	req := func(subject string, data []byte, hdr nats.Header) *nats.Msg {
		t.Helper()
		m, err := env.NC.RequestMsg(&nats.Msg{Subject: subject, Data: data, Header: hdr}, 3*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		return m
	}
	m := req("fn.orders.accept", orderBody(1003, "N1", 3, 100), nil)
	var a accepted
	if err := json.Unmarshal(m.Data, &a); err != nil || m.Header.Get(wire.HeaderStatus) != "202" || a.TotalCents != 300 {
		t.Fatalf("accept over NATS: %v %v %s", err, m.Header, m.Data)
	}
	var o store.Order
	testenv.Eventually(t, time.Second, "get over NATS (JSON body)", func() bool {
		m = req("fn.orders.get", fmt.Appendf(nil, `{"order_id":%q}`, a.OrderID), nil)
		return json.Unmarshal(m.Data, &o) == nil && o.OrderID == a.OrderID
	})
	m = req("fn.orders.get", nil, nats.Header{wire.HeaderParamPrefix + "order_id": {a.OrderID}})
	if err := json.Unmarshal(m.Data, &o); err != nil || o.OrderID != a.OrderID || o.UserID != 1003 {
		t.Errorf("get over NATS (header): %v %s", err, m.Data)
	}
	m = req("fn.orders.get", []byte(`{"order_id":"nope"}`), nil)
	if m.Header.Get(wire.HeaderServiceErrorCode) != "404" || m.Header.Get(wire.HeaderErrorCode) != "order_not_found" {
		t.Errorf("missing order over NATS: %v", m.Header)
	}
	var p listPage
	m = req("fn.orders.list", []byte(`{"user_id":1003,"size":1}`), nil)
	if err := json.Unmarshal(m.Data, &p); err != nil || p.Size != 1 || !slices.Equal(ids(p.Orders), []string{a.OrderID}) {
		t.Errorf("list over NATS (body): %v %s", err, m.Data)
	}
	m = req("fn.orders.list", nil, nats.Header{wire.HeaderParamPrefix + "user_id": {"1003"}, wire.HeaderQuery: {"page=2"}})
	if err := json.Unmarshal(m.Data, &p); err != nil || p.Page != 2 || len(p.Orders) != 0 {
		t.Errorf("list over NATS (headers): %v %s", err, m.Data)
	}
	m = req("fn.orders.list", []byte(`{"user_id":1003,"size":0}`), nil)
	if m.Header.Get(wire.HeaderServiceErrorCode) != "400" || !strings.HasPrefix(m.Header.Get(wire.HeaderServiceError), "size: ") {
		t.Errorf("bad size over NATS: %v", m.Header)
	}
}

func TestIdempotencyKey(t *testing.T) {
	env := start(t)
	const user = 2001
	body := orderBody(user, "IDEM", 2, 1999)
	const n = 50
	resps := make([]*testenv.Response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { resps[i], errs[i] = env.TryDo("POST", "/v1/orders", body, "Idempotency-Key: flash-1") })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if resps[i].Status != 202 || string(resps[i].Body) != string(resps[0].Body) {
			t.Fatalf("call %d: %d %s, call 0: %d %s", i, resps[i].Status, resps[i].Body, resps[0].Status, resps[0].Body)
		}
	}
	var a accepted
	resps[0].JSON(t, &a)

	// Replays: the same order in another layout, and over NATS.
	again := postOrder(t, env, []byte(`{"currency":"CNY", "items":[{"price_cents":1999,"qty":2,"sku":"IDEM"}], "user_id":2001}`), "Idempotency-Key: flash-1")
	if again != a {
		t.Errorf("replay = %+v, want %+v", again, a)
	}
	m, err := env.NC.RequestMsg(&nats.Msg{Subject: "fn.orders.accept", Data: body,
		Header: nats.Header{runtime.HeaderIdempotencyKey: {"flash-1"}}}, 3*time.Second)
	if err != nil || string(m.Data) != string(resps[0].Body) {
		t.Errorf("replay over NATS: %v %s", err, m.Data)
	}
	// The same key with another body is 422.
	r := env.Do(t, "POST", "/v1/orders", orderBody(user, "IDEM", 3, 1999), "Idempotency-Key: flash-1")
	if r.Status != 422 || r.ErrorCode() != "idempotency_key_reused" {
		t.Errorf("other body = %d %s", r.Status, r.Body)
	}
	r = env.Do(t, "POST", "/v1/orders", body, "Idempotency-Key: "+strings.Repeat("k", 256))
	if r.Status != 400 || !strings.HasPrefix(errMessage(t, r), "Idempotency-Key: ") {
		t.Errorf("long key = %d %s", r.Status, r.Body)
	}

	// Exactly one order stored.
	waitDrained(t, env.JS, 5*time.Second)
	if got := ids(userOrders(t, testenv.Store[store.Orders](t, env), user)); !slices.Equal(got, []string{a.OrderID}) {
		t.Errorf("stored orders of user %d = %v, want just %s", user, got, a.OrderID)
	}
	// Another key is another order.
	if b := postOrder(t, env, body, "Idempotency-Key: flash-2"); b.OrderID == a.OrderID {
		t.Error("a different key replayed the first order")
	}
}

// TestHotBucketInMemory: the manifest's storage: memory reaches the server.
func TestHotBucketInMemory(t *testing.T) {
	env := start(t)
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, orders.BucketHot)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
	if cfg.Storage != jetstream.MemoryStorage || cfg.MaxAge != time.Hour {
		t.Errorf("ORDERS_HOT: storage %s, max age %s; want memory, 1h", cfg.Storage, cfg.MaxAge)
	}
}

// TestEmbeddedStoreServesFirstPage: on the embedded store (which only this
// process reads) page 1 comes from the store itself, and order-persist
// writes no ORDERS_HOT page: the bucket stays empty while the list shows
// every order. On a network store the pages are written and read through
// the bucket (internal/platform TestVitessOrderFlow, and the hotCache
// tests on a store without page appends).
func TestEmbeddedStoreServesFirstPage(t *testing.T) {
	env := start(t)
	const user = 1003
	var want []string // newest first
	for i := range 3 {
		want = slices.Insert(want, 0, postOrder(t, env, orderBody(user, fmt.Sprintf("E%d", i), 1, 100)).OrderID)
	}
	testenv.Eventually(t, 3*time.Second, "page 1 lists the three orders", func() bool {
		r := env.Do(t, "GET", fmt.Sprintf("/v1/users/%d/orders", user), nil)
		var p listPage
		r.JSON(t, &p)
		return r.Status == 200 && slices.Equal(ids(p.Orders), want)
	})
	waitDrained(t, env.JS, 3*time.Second)
	kv, err := env.JS.KeyValue(context.Background(), orders.BucketHot)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(context.Background(), "u."+fmt.Sprint(user)); !errors.Is(err, jetstream.ErrKeyNotFound) {
		if err == nil {
			err = fmt.Errorf("a page at revision %d", e.Revision())
		}
		t.Errorf("ORDERS_HOT u.%d: %v; want no key on the embedded store", user, err)
	}
}

// TestOrdersDuplicateWindow: the manifest's duplicateWindow reaches the
// ORDERS stream, which would otherwise hold its ids for JetStream's 2m.
func TestOrdersDuplicateWindow(t *testing.T) {
	env := start(t)
	s, err := env.JS.Stream(context.Background(), "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Duplicates; got != 30*time.Second {
		t.Errorf("ORDERS duplicate window %s, want 30s (manifests/orders.yaml)", got)
	}
}

// TestEmbeddedStorePurgesOldPages: order-persist on the embedded store
// purges ORDERS_HOT when it starts, so that a rollback to a release that
// still read the bucket cannot serve a page left from before this one ran.
func TestEmbeddedStorePurgesOldPages(t *testing.T) {
	env := start(t)
	ctx := context.Background()
	kv, err := env.JS.KeyValue(ctx, orders.BucketHot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "u.1004", []byte("a page of an earlier release")); err != nil {
		t.Fatal(err)
	}
	p := &orders.Persist{}
	if err := p.Provision(ctx, &runtime.Env{JS: env.JS, Store: env.P.Store(), Clock: runtime.SystemClock{},
		Buckets: map[string]jetstream.KeyValue{orders.BucketHot: kv}}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "u.1004"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("ORDERS_HOT u.1004 after Provision: %v; want purged", err)
	}
}
