package buntstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/store/storetest"
)

// BenchmarkPutOrders measures PutOrders of fresh orders, one op being one
// batch; orders/s is the figure to compare. The store is replaced (timer
// stopped) every 100k orders so memory stays bounded for any b.N; on each
// orders engine.
func BenchmarkPutOrders(b *testing.B) {
	for _, engine := range []string{OrdersBuntDB, OrdersPebble} {
		b.Run(engine, func(b *testing.B) { benchPutOrders(b, engine) })
	}
}

func benchPutOrders(b *testing.B, engine string) {
	for _, size := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ctx, rnd := context.Background(), rand.New(rand.NewPCG(1, 2))
			window := max(1, 100_000/size) * size
			var (
				s      *Store
				dir    string
				orders []store.Order
				next   int
				round  int
			)
			fresh := func() {
				if s != nil {
					_ = s.Close()
					_ = os.RemoveAll(dir)
				}
				round++
				dir = fmt.Sprintf("%s/r%d", b.TempDir(), round)
				var err error
				if s, err = OpenWith(dir, Options{Shards: DefaultShards, Orders: engine}); err != nil {
					b.Fatal(err)
				}
				orders, next = storetest.BenchOrders(rnd, fmt.Sprintf("bench-%d-", round), window, 10_000, time.Now()), 0
			}
			fresh()
			b.Cleanup(func() { _ = s.Close() })
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if next+size > len(orders) {
					b.StopTimer()
					fresh()
					b.StartTimer()
				}
				n, err := s.PutOrders(ctx, orders[next:next+size])
				if err != nil || n != size {
					b.Fatalf("PutOrders = %d, %v; want %d", n, err, size)
				}
				next += size
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}

// benchStore returns a store holding 10k orders of 1,000 users plus 100
// orders of user 424242.
func benchStore(b *testing.B) (*Store, []store.Order) {
	b.Helper()
	s := openT(b, b.TempDir(), DefaultShards)
	rnd := rand.New(rand.NewPCG(3, 4))
	orders := storetest.BenchOrders(rnd, "bench-", 10_000, 1_000, time.Now())
	mine := storetest.BenchOrders(rnd, "mine-", 100, 1, time.Now())
	for i := range mine {
		mine[i].UserID = 424242
	}
	for _, batch := range [][]store.Order{orders, mine} {
		if _, err := s.PutOrders(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	return s, orders
}

// BenchmarkListOrders measures the first page (20 orders) of a user with 100.
func BenchmarkListOrders(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		page, err := s.ListOrders(ctx, 424242, 0, 20)
		if err != nil || len(page) != 20 {
			b.Fatalf("ListOrders = %d orders, %v", len(page), err)
		}
	}
}

// BenchmarkGetOrder measures GetOrder of random stored orders.
func BenchmarkGetOrder(b *testing.B) {
	s, orders := benchStore(b)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(5, 6))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		id := orders[rnd.IntN(len(orders))].OrderID
		if _, err := s.GetOrder(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendOrdersPage measures the hot cache's page of a user with
// 100 orders: 20 orders served from the user's head, and 50 walked.
func BenchmarkAppendOrdersPage(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	for _, limit := range []int{headRows, 50} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			var page []byte
			b.ReportAllocs()
			for range b.N {
				var err error
				if page, err = s.AppendOrdersPage(ctx, 424242, limit, page[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
