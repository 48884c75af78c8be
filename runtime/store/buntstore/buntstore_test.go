package buntstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/store/storetest"
)

// openT opens a store with its orders in the shards (buntdb), whose layout
// most tests of the package look at.
func openT(t testing.TB, dir string, n int) *Store {
	return openWithT(t, dir, Options{Shards: n, Orders: OrdersBuntDB})
}

// openWithT opens the store in dir, closed when the test ends.
func openWithT(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	s, err := OpenWith(dir, o)
	if err != nil {
		t.Fatalf("OpenWith %+v: %v", o, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// wantOpenErr fails unless opening dir with o fails with want (any error
// when want is nil).
func wantOpenErr(t *testing.T, dir string, o Options, want error) {
	t.Helper()
	s, err := OpenWith(dir, o)
	if err == nil {
		_ = s.Close()
	}
	if err == nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("OpenWith %+v: err %v, want %v", o, err, cmp.Or(want, errors.New("an error")))
	}
}

// idOrders are orders prefix-from .. prefix-(to-1) of users 0..users-1,
// one millisecond apart.
func idOrders(prefix string, from, to, users int) []store.Order {
	at := time.Date(2025, 11, 11, 0, 0, 0, 0, time.UTC)
	var orders []store.Order
	for i := from; i < to; i++ {
		orders = append(orders, store.Order{OrderID: fmt.Sprintf("%s-%06d", prefix, i), UserID: int64(i % users), Status: "created",
			Currency: "CNY", Items: []store.Item{{SKU: "A", Qty: 1, PriceCents: 100}}, TotalCents: 100, CreatedAt: at.Add(time.Duration(i) * time.Millisecond)})
	}
	return orders
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openT(t, t.TempDir(), 4) })
}

func TestConformanceOneShard(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openT(t, t.TempDir(), 1) })
}

func TestReopenKeepsData(t *testing.T) {
	dir, ctx := t.TempDir(), context.Background()
	at := time.Date(2025, 6, 18, 20, 0, 0, 0, time.UTC)
	orders := idOrders("o", 0, 50, 5)
	s := openT(t, dir, 4)
	if n, err := s.PutOrders(ctx, orders); err != nil || n != 50 {
		t.Fatalf("PutOrders = %d, %v", n, err)
	}
	if _, _, err := s.SignIn(ctx, 7, "2025-06-18", "2025-06-17", at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSMS(ctx, store.SMS{MessageID: "m-1", Status: "queued"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyEvents(ctx, []store.EventBatch{{Seq: 9, Items: map[string]store.Counts{"sku": {View: 3}}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openT(t, dir, 0) // 0: the count the directory was created with
	if len(s.shards) != 4 {
		t.Errorf("reopened with %d shards, want 4", len(s.shards))
	}
	if o, err := s.GetOrder(ctx, "o-000042"); err != nil || o.UserID != 2 || !o.CreatedAt.Equal(orders[42].CreatedAt) {
		t.Errorf("GetOrder after reopen = %+v, %v", o, err)
	}
	if l, err := s.ListOrders(ctx, 3, 0, 100); err != nil || len(l) != 10 || l[0].OrderID != "o-000048" {
		t.Errorf("ListOrders after reopen = %d orders, %v", len(l), err)
	}
	if n, err := s.PutOrders(ctx, orders); err != nil || n != 0 {
		t.Errorf("PutOrders after reopen = %d, %v; want 0", n, err)
	}
	if _, first, err := s.SignIn(ctx, 7, "2025-06-18", "2025-06-17", at); err != nil || first {
		t.Errorf("SignIn after reopen: first %v, %v", first, err)
	}
	if m, err := s.GetSMS(ctx, "m-1"); err != nil || m.Status != "queued" {
		t.Errorf("GetSMS after reopen = %+v, %v", m, err)
	}
	if n, err := s.ApplyEvents(ctx, []store.EventBatch{{Seq: 9, Items: map[string]store.Counts{"sku": {View: 3}}}}); err != nil || n != 0 {
		t.Errorf("ApplyEvents of an old seq after reopen = %d, %v", n, err)
	}
	if c, err := s.ItemStats(ctx, "sku"); err != nil || c.View != 3 {
		t.Errorf("ItemStats after reopen = %+v, %v", c, err)
	}
}

func TestShardDistribution(t *testing.T) {
	const shards, users, perUser = 8, 400, 5
	dir, ctx := t.TempDir(), context.Background()
	s := openT(t, dir, shards)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var batch []store.Order
	for u := range users {
		user := int64(u) * 1024 // common low bits: a weak hash would pile these up
		for i := range perUser {
			batch = append(batch, store.Order{OrderID: fmt.Sprintf("u%d-%d", user, i), UserID: user, CreatedAt: at})
		}
	}
	if _, err := s.PutOrders(ctx, batch); err != nil {
		t.Fatal(err)
	}
	rowsPerShard := make([]int, shards)
	for i, db := range s.shards {
		err := db.View(func(tx *buntdb.Tx) error {
			return tx.AscendKeys("o:*", func(k, _ string) bool {
				var u uint64
				if _, err := fmt.Sscanf(k[2:22], "%d", &u); err != nil {
					t.Errorf("key %q: %v", k, err)
				} else if want := s.userShard(int64(u)); want != i {
					t.Errorf("user %d row in shard %d, want all in shard %d", u, i, want)
				}
				rowsPerShard[i]++
				return true
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range rowsPerShard {
		// 2000 rows over 8 shards: 250 expected; allow a wide margin.
		if n < 150 || n > 350 || n%perUser != 0 {
			t.Errorf("shard %d holds %d rows: %v", i, n, rowsPerShard)
		}
	}
	t.Logf("rows per shard: %v", rowsPerShard)
}

func TestShardCountMismatch(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, 4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		n       int
		wantErr error
	}{
		{"fewer", 2, ErrShardCount},
		{"more", 8, ErrShardCount},
		{"same", 4, nil},
		{"stored", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(dir, tt.n)
			if err == nil {
				_ = s.Close()
			}
			if !errors.Is(err, tt.wantErr) && (err != nil || tt.wantErr != nil) {
				t.Fatalf("Open(%d): err %v, want %v", tt.n, err, tt.wantErr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, shardFile(4))); !os.IsNotExist(err) {
		t.Errorf("a refused Open created %s: %v", shardFile(4), err)
	}
}

func TestLostShardFile(t *testing.T) {
	tests := []struct {
		name string
		lost int
	}{
		{"data shard", 2},
		{"shard 0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, 4)
			orders := []store.Order{{OrderID: "a", UserID: 1}, {OrderID: "b", UserID: 2}, {OrderID: "c", UserID: 3}, {OrderID: "d", UserID: 4}}
			if _, err := s.PutOrders(context.Background(), orders); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, shardFile(tt.lost))); err != nil {
				t.Fatal(err)
			}
			if s, err := Open(dir, 4); !errors.Is(err, ErrShardMarker) {
				if err == nil {
					_ = s.Close()
				}
				t.Fatalf("Open without %s: err %v, want ErrShardMarker", shardFile(tt.lost), err)
			}
		})
	}
}

// TestShardMappingIsFixed pins the user and key hashes: files written by
// one version must be read by the next, so the mapping never changes.
func TestShardMappingIsFixed(t *testing.T) {
	s := &Store{shards: make([]*buntdb.DB, 8)}
	for user, want := range map[int64]int{1: 2, 2: 0, 1024: 4, 2048: 3, 123456789: 1} {
		if got := s.userShard(user); got != want {
			t.Errorf("user %d: shard %d, want %d", user, got, want)
		}
	}
	if got := s.keyShard("01JD0000000000000000000000"); got != 6 {
		t.Errorf("order id key: shard %d, want 6", got)
	}
}
