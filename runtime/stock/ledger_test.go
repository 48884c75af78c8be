package stock_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// on one stream LEDGER capturing "ledger.>"; cfg (optional) gives the rest
// of their config.
func ledgers(t testing.TB, n int, cfg ...stock.LedgerConfig) []*stock.Ledger {
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
		var c stock.LedgerConfig
		if len(cfg) > 0 {
			c = cfg[0]
		}
		c.Stream, c.Prefix = "LEDGER", "ledger"
		l := stock.NewLedger(js, c)
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

// BenchmarkLedgerReserve is BenchmarkReserve's load on the ledger: 64
// goroutines, a new holder each, one hot key, each take carrying a body of
// about a sale order's size; on one ledger (one process), and on two
// ledgers taking turns (two hosts racing on the key's compare-and-set).
func BenchmarkLedgerReserve(b *testing.B) {
	order := []byte(`{"order_id":"hot-12345678-1","user_id":12345678,"items":[{"sku":"HOT-1","qty":1,"price_cents":999}],"currency":"CNY","created_at":"2026-12-02T10:00:00.000001Z","total_cents":999},`)
	encode := func(_ string, takes []stock.Taken) ([]byte, error) {
		return bytes.Repeat(order, len(takes)), nil
	}
	for _, hosts := range []int{1, 2} {
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) {
			ls := ledgers(b, hosts, stock.LedgerConfig{Encode: encode})
			ctx := context.Background()
			if _, err := ls[0].Set(ctx, "hot", 1<<40); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					if _, err := ls[n%int64(hosts)].Reserve(ctx, "hot", stock.Take{Holder: strconv.FormatInt(n, 10), Units: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
