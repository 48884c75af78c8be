package buntstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/buntdb"

	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/store/storetest"
)

func openPebbleT(t testing.TB, dir string, n int) *Store {
	return openWithT(t, dir, Options{Shards: n, Orders: OrdersPebble})
}

func TestConformancePebble(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openPebbleT(t, t.TempDir(), 4) })
}

// TestPebbleHoldsTheOrders: with the pebble engine the orders are in
// orders.pebble, none in the shards, and they survive a reopen that names
// no engine.
func TestPebbleHoldsTheOrders(t *testing.T) {
	dir, ctx := t.TempDir(), context.Background()
	orders := idOrders("p", 0, 200, 7)
	s := openPebbleT(t, dir, 4)
	if n, err := s.PutOrders(ctx, orders); err != nil || n != len(orders) {
		t.Fatalf("PutOrders = %d, %v", n, err)
	}
	if held, err := s.holdsOrders(); err != nil || held {
		t.Errorf("the shards hold order keys (%v, %v): the pebble engine must keep them all", held, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, pebbleDir)); err != nil {
		t.Fatalf("no %s: %v", pebbleDir, err)
	}

	s = openWithT(t, dir, Options{}) // no engine named: the one it was created with
	if s.peb == nil {
		t.Fatal("reopened without an engine named: orders in buntdb, want pebble as created")
	}
	if o, err := s.GetOrder(ctx, "p-000150"); err != nil || o.UserID != 150%7 || !o.CreatedAt.Equal(orders[150].CreatedAt) || o.TotalCents != 100 {
		t.Errorf("GetOrder after reopen = %+v, %v", o, err)
	}
	if l, err := s.ListOrders(ctx, 3, 0, 100); err != nil || len(l) != 29 || l[0].OrderID != "p-000199" || l[28].OrderID != "p-000003" {
		t.Errorf("ListOrders after reopen = %d orders (%v), want 29 from p-000199 to p-000003", len(l), err)
	}
	if n, err := s.PutOrders(ctx, orders); err != nil || n != 0 {
		t.Errorf("PutOrders again after reopen = %d, %v; want 0", n, err)
	}
}

// putT puts orders into s, failing the test if it cannot.
func putT(t *testing.T, s *Store, orders []store.Order) {
	t.Helper()
	if _, err := s.PutOrders(context.Background(), orders); err != nil {
		t.Fatal(err)
	}
}

// TestOrdersEngineMismatch: a store opened with the other engine than it
// was created with is refused, and a store of an earlier version (orders
// in its shards, no engine recorded) is buntdb.
func TestOrdersEngineMismatch(t *testing.T) {
	ctx := context.Background()
	order := []store.Order{{OrderID: "x", UserID: 1, CreatedAt: time.Now()}}
	for _, tt := range []struct{ created, asked string }{{OrdersBuntDB, OrdersPebble}, {OrdersPebble, OrdersBuntDB}} {
		t.Run(tt.created, func(t *testing.T) {
			dir := t.TempDir()
			s := openWithT(t, dir, Options{Shards: 2, Orders: tt.created})
			putT(t, s, order)
			_ = s.Close()
			wantOpenErr(t, dir, Options{Orders: tt.asked}, ErrOrdersEngine)
			s = openWithT(t, dir, Options{Orders: tt.created})
			if _, err := s.GetOrder(ctx, "x"); err != nil {
				t.Errorf("GetOrder after the refused open: %v", err)
			}
		})
	}
	t.Run("earlier version", func(t *testing.T) {
		dir := t.TempDir()
		s := openT(t, dir, 2)
		putT(t, s, order)
		// A store of an earlier version has no engine record.
		if err := s.shards[0].Update(func(tx *buntdb.Tx) error { _, err := tx.Delete(ordersKey); return err }); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		wantOpenErr(t, dir, Options{Orders: OrdersPebble}, ErrOrdersEngine)
		s = openWithT(t, dir, Options{}) // no engine named: found in the shards
		if s.peb != nil {
			t.Error("a store with orders in its shards opened with the pebble engine")
		}
		if _, err := s.GetOrder(ctx, "x"); err != nil {
			t.Errorf("GetOrder: %v", err)
		}
	})
	t.Run("lost engine files", func(t *testing.T) {
		dir := t.TempDir()
		s := openPebbleT(t, dir, 2)
		putT(t, s, order)
		_ = s.Close()
		if err := os.RemoveAll(filepath.Join(dir, pebbleDir)); err != nil {
			t.Fatal(err)
		}
		// Its orders would be silently gone.
		wantOpenErr(t, dir, Options{}, nil)
	})
}

// TestPebbleConcurrentPuts: batches that share order ids, put at once,
// store each id once, and the counts they report add up to the ids.
func TestPebbleConcurrentPuts(t *testing.T) {
	s, ctx := openPebbleT(t, t.TempDir(), 2), context.Background()
	const writers, ids = 8, 3000
	at := time.Date(2025, 11, 11, 0, 0, 0, 0, time.UTC)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for w := range writers {
		wg.Go(func() {
			// Each writer puts every id, in batches of 100, starting
			// at a different place, with its own created_at.
			for b := range ids / 100 {
				start := ((b + w*3) % (ids / 100)) * 100
				batch := make([]store.Order, 100)
				for i := range batch {
					id := start + i
					batch[i] = store.Order{OrderID: fmt.Sprintf("c-%05d", id), UserID: int64(id % 13),
						CreatedAt: at.Add(time.Duration(w) * time.Hour)}
				}
				n, err := s.PutOrders(ctx, batch)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if total != ids {
		t.Errorf("PutOrders reported %d inserted, want %d", total, ids)
	}
	listed := 0
	for u := range int64(13) {
		l, err := s.ListOrders(ctx, u, 0, ids)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, o := range l {
			if seen[o.OrderID] {
				t.Errorf("user %d lists %s twice", u, o.OrderID)
			}
			seen[o.OrderID] = true
			got, err := s.GetOrder(ctx, o.OrderID)
			if err != nil || !got.CreatedAt.Equal(o.CreatedAt) {
				t.Errorf("GetOrder(%s) = %v, %v; listed at %v", o.OrderID, got.CreatedAt, err, o.CreatedAt)
			}
		}
		listed += len(l)
	}
	if listed != ids {
		t.Errorf("%d orders listed, want %d", listed, ids)
	}
}

// TestOpenBackendOrders: the orders field of --store-config picks the
// engine; an unknown one is a config error.
func TestOpenBackendOrders(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := store.Open(context.Background(), ID, store.OpenContext{Dir: dir}, json.RawMessage(`{"orders":"pebble"}`))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if s.(*Store).peb == nil {
		t.Error(`{"orders":"pebble"} opened the orders in buntdb`)
	}
	_ = s.Close()
	_, err = store.Open(context.Background(), ID, store.OpenContext{Dir: t.TempDir()}, json.RawMessage(`{"orders":"rocksdb"}`))
	if !errors.Is(err, store.ErrBadConfig) {
		t.Errorf(`Open({"orders":"rocksdb"}) = %v, want store.ErrBadConfig`, err)
	}
}
