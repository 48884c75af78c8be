package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/store"
)

// TestMergedRefresh: with a store that lists pages over the network (one
// without AppendOrdersPage), a refresh given the orders just stored merges
// them into the cached page instead of reading it back: the page is what
// the store would list, the store is read once per maxMerges refreshes,
// and a missing page or a stale marker is read from the store.
func TestMergedRefresh(t *testing.T) {
	env := testenv.Start(t, func(o *platform.Options) { o.Runtime = false; o.HTTPAddr = "" })
	ctx := context.Background()
	const bucket = "HOT_MERGE"
	kv, err := env.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	st := &memStore{orders: map[int64][]store.Order{}, lists: map[int64]int{}}
	h := &hotCache{kv: kv, store: st, workers: 4, js: env.JS, bucket: bucket}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	newOrder := func(user int64, at time.Time) store.Order {
		n++
		return store.Order{OrderID: fmt.Sprintf("o-%03d", n), UserID: user, Items: []store.Item{{SKU: "S", Qty: 1, PriceCents: 5}},
			TotalCents: 5, Currency: "CNY", Status: StatusAccepted, CreatedAt: at}
	}
	// storeOrders stores the orders (memStore keeps a user's newest first,
	// so they are added oldest first) and refreshes with them.
	storeOrders := func(user int64, orders ...store.Order) {
		t.Helper()
		for _, o := range orders {
			st.add(o)
		}
		if failed, err := h.refreshMerging(ctx, []int64{user}, map[int64][]store.Order{user: orders}); failed != 0 || err != nil {
			t.Fatalf("refresh: %d failed: %v", failed, err)
		}
	}
	wantCurrent := func(user int64, what string) {
		t.Helper()
		e, err := kv.Get(ctx, hotKey(user))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got, ok := decodePage(e.Value())
		if !ok {
			t.Fatalf("%s: %q is not a page", what, e.Value())
		}
		list, _ := st.ListOrders(ctx, user, 0, HotPageSize)
		st.mu.Lock()
		st.lists[user]-- // this check's own read does not count
		st.mu.Unlock()
		want, _ := json.Marshal(list)
		if string(got) != string(want) {
			t.Fatalf("%s: cached page\n%s\nwant what the store lists\n%s", what, got, want)
		}
	}
	reads := func(user int64) int {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.lists[user]
	}

	// No page yet: read from the store.
	storeOrders(1, newOrder(1, t0))
	wantCurrent(1, "first page")
	if reads(1) != 1 {
		t.Fatalf("%d store reads for the first page, want 1", reads(1))
	}
	// Merged: two at once, one older than the page's newest (created_at
	// decides, then order_id), and one with the same time as another.
	storeOrders(1, newOrder(1, t0.Add(2*time.Second)), newOrder(1, t0.Add(-time.Second)))
	storeOrders(1, newOrder(1, t0.Add(2*time.Second)))
	wantCurrent(1, "merged")
	if reads(1) != 1 {
		t.Errorf("%d store reads after two merged refreshes, want still 1", reads(1))
	}
	// Past HotPageSize the oldest fall off; every maxMerges refreshes the
	// store is read again.
	for i := range 2 * maxMerges {
		storeOrders(1, newOrder(1, t0.Add(time.Duration(10+i)*time.Second)))
		wantCurrent(1, fmt.Sprintf("refresh %d", i))
	}
	if got, want := reads(1), 1+(2*maxMerges+2)/(maxMerges+1); got != want {
		t.Errorf("%d store reads over %d refreshes, want %d (one per %d merges)", got, 2*maxMerges+3, want, maxMerges)
	}
	// A stale marker is never merged into.
	if _, err := kv.Put(ctx, hotKey(1), staleMarker); err != nil {
		t.Fatal(err)
	}
	before := reads(1)
	storeOrders(1, newOrder(1, t0.Add(time.Hour)))
	wantCurrent(1, "after a stale marker")
	if reads(1) != before+1 {
		t.Errorf("a stale page was merged into instead of read from the store")
	}
	// An order already on the page (a redelivery) is not added twice.
	dup := st.orders[1][0]
	if failed, err := h.refreshMerging(ctx, []int64{1}, map[int64][]store.Order{1: {dup}}); failed != 0 || err != nil {
		t.Fatal(failed, err)
	}
	wantCurrent(1, "redelivered order")
	// Without orders (nil: a batch that could not say) the store is read.
	before = reads(1)
	if failed, err := h.refreshMerging(ctx, []int64{1}, nil); failed != 0 || err != nil {
		t.Fatal(failed, err)
	}
	if reads(1) != before+1 {
		t.Error("a refresh without orders did not read the store")
	}
}

func TestMergedPageCodec(t *testing.T) {
	page := []byte(`[{"order_id":"a"}]`)
	for _, merges := range []byte{0, 1, 15, 255} {
		v := encodeMergedPage([]byte("prefix"), page, merges)
		got, m, ok := decodeMergedPage(v[len("prefix"):])
		if !ok || string(got) != string(page) || m != merges {
			t.Errorf("merges %d: decoded %q %d %v", merges, got, m, ok)
		}
		if plain, ok := decodePage(v[len("prefix"):]); !ok || string(plain) != string(page) {
			t.Errorf("merges %d: decodePage %q %v", merges, plain, ok)
		}
	}
	if _, _, ok := decodeMergedPage([]byte{pageS2Merged, 3}); ok {
		t.Error("a merged value without a page decoded")
	}
}
