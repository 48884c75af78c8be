package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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

// TestMergePageMatchesDecoding: the merge that copies a page's orders as
// they are gives what decoding the page, sorting and encoding it again
// gives, for orders whose strings hold JSON's special characters too, and
// a page of another shape is decoded in full.
func TestMergePageMatchesDecoding(t *testing.T) {
	skus := []string{`plain`, `quo"te`, `br{ace}s`, `[arr]`, `back\slash`, `"order_id":"x"`, `"created_at":"2020-01-01T00:00:00Z"`, "uni€code"}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	mk := func(i int, at time.Time) store.Order {
		return store.Order{OrderID: fmt.Sprintf("id-%02d", i), UserID: 9, Items: []store.Item{{SKU: skus[i%len(skus)], Qty: 1, PriceCents: int64(i)}},
			TotalCents: int64(i), Currency: "USD", Status: StatusAccepted, CreatedAt: at}
	}
	reference := func(page []store.Order, add []store.Order) []byte {
		all := slices.Clone(page)
		for _, o := range add {
			if !slices.ContainsFunc(all, func(p store.Order) bool { return p.OrderID == o.OrderID }) {
				all = append(all, o)
			}
		}
		slices.SortStableFunc(all, func(a, b store.Order) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b.OrderID, a.OrderID)
		})
		b, _ := json.Marshal(all[:min(len(all), HotPageSize)])
		return b
	}
	for round := range 40 {
		var page, add []store.Order
		for i := range round % 23 {
			page = append(page, mk(i, t0.Add(-time.Duration(i*7%5)*time.Second)))
		}
		slices.SortStableFunc(page, func(a, b store.Order) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(b.OrderID, a.OrderID)
		})
		page = page[:min(len(page), HotPageSize)]
		for i := range round%4 + 1 {
			add = append(add, mk(30+round*4+i, t0.Add(time.Duration(i*3%4-1)*time.Second)))
		}
		if len(page) > 0 {
			add = append(add, page[0]) // already on the page
		}
		raw, _ := json.Marshal(page)
		if len(page) == 0 {
			raw = []byte("[]")
		}
		got, err := mergePage(raw, add)
		if err != nil {
			t.Fatal(err)
		}
		if want := reference(page, add); string(got) != string(want) {
			t.Fatalf("round %d: merged\n%s\nwant\n%s", round, got, want)
		}
		if len(page) > 0 {
			if _, ok := pageEntries(raw); !ok {
				t.Fatalf("round %d: a page as the stores write it was not split", round)
			}
		}
	}
	// Another shape (indented, fields in another order): decoded in full.
	odd := []byte(`[ {"created_at":"2026-12-01T00:00:00Z","order_id":"z","user_id":9,"items":[],"total_cents":0,"currency":"USD","status":"accepted"} ]`)
	if _, ok := pageEntries(odd); ok {
		t.Fatal("a page of another shape was split")
	}
	got, err := mergePage(odd, []store.Order{mk(1, t0.Add(time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	if ids := pageIDs(t, got); !slices.Equal(ids, []string{"id-01", "z"}) {
		t.Errorf("merged into another shape: %v", ids)
	}
}
