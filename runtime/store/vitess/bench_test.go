package vitess

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store/storetest"
)

// BenchmarkPutOrders measures PutOrders of fresh orders through vtgate, one
// op being one batch, one batch at a time; orders/s is the figure to
// compare with buntstore's BenchmarkPutOrders. Order ids carry the run's
// start time, so reruns against the same keyspace write new rows.
func BenchmarkPutOrders(b *testing.B) {
	s := openT(b)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	invocation := 0 // b.Run calls the function once per b.N it tries
	for _, size := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			invocation++
			ctx, rnd := context.Background(), rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer() // memory stays bounded for any b.N
				batch := storetest.BenchOrders(rnd, fmt.Sprintf("bench-%s-%d-%d-", run, invocation, i), size, 10_000, time.Now())
				b.StartTimer()
				n, err := s.PutOrders(ctx, batch)
				if err != nil || n != size {
					b.Fatalf("PutOrders = %d, %v; want %d", n, err, size)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}
