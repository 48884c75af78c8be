package buntstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store/storetest"
)

// BenchmarkStoreGrowth compares the pebble engine's PutOrders with 5M
// orders stored against an empty store, as make bench's growth-empty and
// growth-5m runs do through the platform: 500k orders put by 8 writers in
// batches of 1000, after a warm-up of 100k, then again after a fill to
// SURGE_BENCH_GROWTH orders (default 5M). Each put starts with no flush or
// compaction running; its rate is over the puts, its CPU time (user +
// system, of the process) until the flushes and compactions they started
// have ended. b.N is ignored: run it with -benchtime=1x (about 25 s).
// Its orders compress better than real ones (the same items, sequential
// ids): 5.6M take about 185 MB on disk where make bench's take 514 MB.
func BenchmarkStoreGrowth(b *testing.B) {
	fill := 5_000_000
	if v := os.Getenv("SURGE_BENCH_GROWTH"); v != "" {
		var err error
		if fill, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	s, err := OpenWith(b.TempDir(), Options{Shards: DefaultShards, Orders: OrdersPebble})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rnd := rand.New(rand.NewPCG(5, 6))
	start := time.Now().Add(-time.Hour)
	n := 0
	put := func(count int) (rate float64, cpu time.Duration) {
		const writers, batch = 8, 1000
		orders := storetest.BenchOrders(rnd, fmt.Sprintf("g%d-", n), count, 1000, start.Add(time.Duration(n)*time.Microsecond))
		n += count
		c0, t0 := cpuTime(b), time.Now()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := w * batch; i < len(orders); i += writers * batch {
					if _, err := s.PutOrders(context.Background(), orders[i:min(i+batch, len(orders))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		el := time.Since(t0)
		settle(b, s)
		return float64(count) / el.Seconds(), (cpuTime(b) - c0) / time.Duration(count)
	}
	put(100_000)
	emptyRate, emptyCPU := put(500_000)
	for n < fill {
		put(min(1_000_000, fill-n))
	}
	fullRate, fullCPU := put(500_000)
	b.ReportMetric(emptyRate, "empty-orders/s")
	b.ReportMetric(fullRate, "full-orders/s")
	b.ReportMetric(fullRate/emptyRate, "full/empty")
	b.ReportMetric(float64(emptyCPU.Nanoseconds()), "empty-cpu-ns/order")
	b.ReportMetric(float64(fullCPU.Nanoseconds()), "full-cpu-ns/order")
	b.Log(s.peb.db.Metrics().String())
}

// settle waits until no flush or compaction of the engine has run for
// five readings in a row, 50ms apart (a flush that ends may start a
// compaction), for at most 30 s.
func settle(b *testing.B, s *Store) {
	b.Helper()
	quiet := 0
	for range 600 {
		m := s.peb.db.Metrics()
		if m.Compact.NumInProgress == 0 && m.Flush.NumInProgress == 0 {
			if quiet++; quiet == 5 {
				return
			}
		} else {
			quiet = 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Log("flushes or compactions still running after 30 s")
}

// cpuTime is the user + system CPU time of the process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
