package buntstore

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/surgefn/surge/runtime/store"
)

// BenchmarkMemoryPerOrder stores memOrders orders shaped like those of
// `surge bench` (ULID ids, three items of BENCH-<n> skus, CNY, 10,000
// users) in batches, refreshing each batch's users' first pages as
// order-persist does, and reports the live heap per stored order after a
// GC: heap-B/order with the page heads, heads-B/order what the heads
// hold of it. It runs once whatever b.N (-benchtime=1x).
func BenchmarkMemoryPerOrder(b *testing.B) {
	const (
		memOrders = 200_000
		users     = 10_000
		batch     = 200
	)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(7, 8))
	entropy := ulid.Monotonic(rand.NewChaCha8([32]byte{9}), 0)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mk := func(i int) store.Order {
		at := base.Add(time.Duration(i) * 37 * time.Microsecond)
		o := store.Order{
			OrderID:   ulid.MustNew(ulid.Timestamp(at), entropy).String(),
			UserID:    1_000_000 + rnd.Int64N(users),
			Currency:  "CNY",
			Status:    "accepted",
			CreatedAt: at,
		}
		for range 3 {
			it := store.Item{SKU: "BENCH-" + strconv.Itoa(rnd.IntN(10_000)), Qty: 1 + rnd.IntN(5), PriceCents: 100 + rnd.Int64N(99_900)}
			o.TotalCents += int64(it.Qty) * it.PriceCents
			o.Items = append(o.Items, it)
		}
		return o
	}
	for range b.N {
		dir, err := os.MkdirTemp(b.TempDir(), "mem")
		if err != nil {
			b.Fatal(err)
		}
		s, err := Open(dir, DefaultShards)
		if err != nil {
			b.Fatal(err)
		}
		before := liveHeap()
		var page []byte
		for i := 0; i < memOrders; i += batch {
			orders := make([]store.Order, batch)
			for j := range orders {
				orders[j] = mk(i + j)
			}
			if n, err := s.PutOrders(ctx, orders); err != nil || n != batch {
				b.Fatalf("PutOrders = %d, %v", n, err)
			}
			for j := range orders {
				if page, err = s.AppendOrdersPage(ctx, orders[j].UserID, 20, page[:0]); err != nil {
					b.Fatal(err)
				}
			}
		}
		withHeads := liveHeap()
		for _, h := range s.heads {
			h.mu.Lock()
			clear(h.m)
			h.mu.Unlock()
		}
		noHeads := liveHeap()
		b.ReportMetric(float64(withHeads.inuse-before.inuse)/memOrders, "heap-B/order")
		b.ReportMetric(float64(withHeads.alloc-before.alloc)/memOrders, "alloc-B/order")
		b.ReportMetric(float64(withHeads.inuse-noHeads.inuse)/memOrders, "heads-B/order")
		runtime.KeepAlive(s)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

type heapSample struct{ inuse, alloc int64 }

func liveHeap() heapSample {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapSample{int64(m.HeapInuse), int64(m.HeapAlloc)}
}
