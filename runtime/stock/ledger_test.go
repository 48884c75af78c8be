package stock_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/stock"
)

// ledgers opens n ledgers, each on its own connection (as n hosts would),
// on one stream LEDGER capturing "ledger.>".
func ledgers(t testing.TB, n int) []*stock.Ledger {
	t.Helper()
	ns := testenv.NATSServer(t)
	var out []*stock.Ledger
	for i := range n {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		if i == 0 {
			if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "LEDGER",
				Subjects: []string{"ledger.>"}}); err != nil {
				t.Fatal(err)
			}
		}
		l := stock.NewLedger(js, stock.LedgerConfig{Stream: "LEDGER", Prefix: "ledger"})
		t.Cleanup(l.Close)
		out = append(out, l)
	}
	return out
}

// TestLedgerConcurrentHosts: two ledgers (two hosts) sell 100 units to
// 400 holders, each trying twice with its retry key and once without:
// exactly 100 units taken, one claim per winner, no holder over its limit
// of 1, and a third ledger opened afterwards rebuilds the same levels.
func TestLedgerConcurrentHosts(t *testing.T) {
	ls := ledgers(t, 3)
	ctx := context.Background()
	if _, err := ls[0].Set(ctx, "sku", 100); err != nil {
		t.Fatal(err)
	}
	var won atomic.Int64
	var mu sync.Mutex
	claimOf := map[string]string{}
	var wg sync.WaitGroup
	for h := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := strconv.Itoa(h)
			for try := range 3 {
				key := "k-" + holder
				if try == 2 {
					key = ""
				}
				c, err := ls[(h+try)%2].Reserve(ctx, "sku", stock.Take{Holder: holder, Units: 1, Limit: 1, Key: key})
				switch {
				case errors.Is(err, stock.ErrSoldOut), errors.Is(err, stock.ErrLimit):
				case err != nil:
					t.Errorf("holder %s: %v", holder, err)
				default:
					mu.Lock()
					if prev, ok := claimOf[holder]; ok && prev != c.ID {
						t.Errorf("holder %s got claims %s and %s", holder, prev, c.ID)
					}
					if !c.Replayed {
						won.Add(1)
					}
					claimOf[holder] = c.ID
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if won.Load() != 100 || len(claimOf) != 100 {
		t.Fatalf("%d takes won by %d holders, want 100 by 100", won.Load(), len(claimOf))
	}
	for i, l := range ls {
		lv, err := l.Levels(ctx, "sku")
		if err != nil || lv.Total != 100 || lv.Sold != 100 {
			t.Errorf("ledger %d levels = %+v, %v; want 100 of 100 sold", i, lv, err)
		}
	}
	if _, err := ls[2].Set(ctx, "sku", 99); !errors.Is(err, stock.ErrBelowSold) {
		t.Errorf("Set below sold = %v, want ErrBelowSold", err)
	}
	_, err := ls[2].Set(ctx, "sku", 101)
	if err != nil {
		t.Fatal(err)
	}
	// Another host sees the raise once its tail delivered it: a take
	// without a retry key may be told sold out until then (documented).
	var c stock.Claim
	testenv.Eventually(t, 5*time.Second, "the raise seen by another ledger", func() bool {
		c, err = ls[0].Reserve(ctx, "sku", stock.Take{Holder: "new", Units: 1})
		return !errors.Is(err, stock.ErrSoldOut)
	})
	if err != nil || c.ID != "sku-new-1" {
		t.Errorf("take after a raise on another host = %+v, %v", c, err)
	}
	if _, err := ls[1].Reserve(ctx, "other", stock.Take{Holder: "x", Units: 1}); !errors.Is(err, stock.ErrNoStock) {
		t.Errorf("take of a key never set = %v, want ErrNoStock", err)
	}
}
