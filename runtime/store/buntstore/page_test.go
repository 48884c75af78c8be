package buntstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/store/storetest"
)

// TestAppendOrdersPage: the page built from stored rows is the JSON of
// ListOrders' first page, for no orders, fewer than a page and more.
func TestAppendOrdersPage(t *testing.T) {
	s, err := Open(t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	orders := storetest.BenchOrders(rand.New(rand.NewPCG(3, 4)), "p-", 60, 3, time.Now().UTC().Truncate(time.Microsecond))
	if _, err := s.PutOrders(ctx, orders); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		user  int64
		limit int
	}{{"no orders", 999, 20}, {"a page", 1, 20}, {"few", 2, 5}, {"all", 3, 100}} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.AppendOrdersPage(ctx, tc.user, tc.limit, []byte("prefix:"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.ListOrders(ctx, tc.user, 0, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []store.Order
			if string(page[:7]) != "prefix:" {
				t.Fatalf("dst not appended to: %q", page[:10])
			}
			if err := json.Unmarshal(page[7:], &got); err != nil {
				t.Fatalf("page %q: %v", page, err)
			}
			if len(got) != len(want) {
				t.Fatalf("page has %d orders, ListOrders %d", len(got), len(want))
			}
			for i := range got {
				if got[i].OrderID != want[i].OrderID {
					t.Errorf("order %d = %s, want %s", i, got[i].OrderID, want[i].OrderID)
				}
			}
		})
	}
}

// walkedPage is AppendOrdersPage without the heads: the B-tree walk.
func walkedPage(t *testing.T, s *Store, user int64, limit int) string {
	t.Helper()
	rows, err := s.scanOrders(context.Background(), user, 0, limit)
	if err != nil {
		t.Fatal(err)
	}
	page := []byte{'['}
	for i, r := range rows {
		if i > 0 {
			page = append(page, ',')
		}
		if page, err = appendOrderJSON(page, user, r); err != nil {
			t.Fatal(err)
		}
	}
	return string(append(page, ']'))
}

// TestPageHeads: pages served from the heads equal the walk, while
// concurrent writers add orders (some older than the page, some
// re-submitted under another created_at, some twice) and readers page.
func TestPageHeads(t *testing.T) {
	for _, engine := range []string{OrdersBuntDB, OrdersPebble} {
		t.Run(engine, func(t *testing.T) {
			s, err := OpenWith(t.TempDir(), Options{Shards: 2, Orders: engine})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			testPageHeads(t, s)
		})
	}
}

func testPageHeads(t *testing.T, s *Store) {
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Microsecond)
	const users = 12
	var (
		wg  sync.WaitGroup
		ids atomic.Int64
	)
	for w := range 4 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 9))
			for range 60 {
				batch := make([]store.Order, 1+rnd.IntN(30))
				for i := range batch {
					id := fmt.Sprintf("o%06d", ids.Add(1))
					if rnd.IntN(8) == 0 && ids.Load() > 10 {
						id = fmt.Sprintf("o%06d", 1+rnd.Int64N(ids.Load()-1)) // stored before, maybe elsewhere
					}
					batch[i] = store.Order{OrderID: id, UserID: 1 + rnd.Int64N(users), Currency: "CNY",
						Items:     []store.Item{{SKU: "A", Qty: 1, PriceCents: 5}},
						CreatedAt: base.Add(time.Duration(rnd.IntN(100_000)) * time.Millisecond)}
				}
				if _, err := s.PutOrders(ctx, batch); err != nil {
					t.Error(err)
					return
				}
				for range 3 {
					if _, err := s.AppendOrdersPage(ctx, 1+rnd.Int64N(users), 1+rnd.IntN(headRows), nil); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	served := 0
	for u := int64(1); u <= users; u++ {
		for _, limit := range []int{1, 7, headRows, headRows + 5} {
			_, cached := s.heads[s.userShard(u)].page(u, limit, nil)
			if cached {
				served++
			}
			page, err := s.AppendOrdersPage(ctx, u, limit, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := walkedPage(t, s, u, limit); string(page) != want {
				t.Errorf("user %d limit %d (from the head: %v):\n got %s\nwant %s", u, limit, cached, page, want)
			}
		}
	}
	if served == 0 {
		t.Error("no page came from the heads")
	}
}

// hk is the key of a head row at ts.
func hk(ts uint64) string { return pad20(ts) + ":o" }

// TestHeadFillAfterWrite: a walk's rows are not kept when a write touched
// the user between the walk and the fill; merges keep the newest rows.
func TestHeadFillAfterWrite(t *testing.T) {
	h := newHeads()
	rows := []headRow{{hk(2), `{"b"}`}, {hk(1), `{"a"}`}}
	g := h.gen(7).Load()
	h.gen(7).Add(1) // a write transaction of user 7
	h.fill(7, g, rows, true)
	if _, ok := h.page(7, 2, nil); ok {
		t.Fatal("a walk older than a write filled the head")
	}
	h.fill(7, h.gen(7).Load(), rows, true)
	if page, ok := h.page(7, 5, nil); !ok || string(page) != `[{"b"},{"a"}]` {
		t.Fatalf("page = %s %v", page, ok)
	}
	h.merge(7, []headRow{{hk(3), `{"c"}`}, {hk(1), `{"a"}`}, {hk(0), `{"old"}`}})
	if page, ok := h.page(7, 3, nil); !ok || string(page) != `[{"c"},{"b"},{"a"}]` {
		t.Fatalf("after merge: page = %s %v", page, ok)
	}
	var many []headRow
	for i := range headRows + 3 {
		many = append(many, headRow{hk(uint64(9000 + i)), "{}"})
	}
	h.merge(7, many)
	if _, ok := h.page(7, headRows, nil); !ok {
		t.Error("a full head does not serve a full page")
	}
	if _, ok := h.page(7, headRows+1, nil); ok {
		t.Error("a page longer than a head served from it")
	}
	h.drop(7)
	if _, ok := h.page(7, 1, nil); ok {
		t.Error("dropped head still served")
	}
}
