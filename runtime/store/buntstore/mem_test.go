package buntstore

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
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
// hold of it, peakRSS-B/order the growth of the peak resident set over
// the run (as make bench measures it; GOGC and GOMEMLIMIT move it), for
// each orders engine (the pebble engine's block cache and memtables are
// outside the Go heap: peakRSS is its figure). Run it with -benchtime=1x.
func BenchmarkMemoryPerOrder(b *testing.B) {
	for _, engine := range []string{OrdersBuntDB, OrdersPebble} {
		b.Run(engine, func(b *testing.B) { benchMemoryPerOrder(b, engine) })
	}
}

func benchMemoryPerOrder(b *testing.B, engine string) {
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
		s, err := OpenWith(dir, Options{Shards: DefaultShards, Orders: engine})
		if err != nil {
			b.Fatal(err)
		}
		before, rss0 := liveHeap(), procKiB(b, "VmRSS")
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
		peak := procKiB(b, "VmHWM")
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
		b.ReportMetric(float64(peak-rss0)*1024/memOrders, "peakRSS-B/order")
		runtime.KeepAlive(s)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// procKiB reads a kB field of /proc/self/status (0 where there is none).
func procKiB(b *testing.B, field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("%s: %v", line, err)
			}
			return kib
		}
	}
	return 0
}

type heapSample struct{ inuse, alloc int64 }

func liveHeap() heapSample {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapSample{int64(m.HeapInuse), int64(m.HeapAlloc)}
}
