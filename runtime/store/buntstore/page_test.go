package buntstore

import (
	"context"
	"encoding/json"
	"math/rand/v2"
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
