package stock_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/surgefn/surge/internal/testenv"
)

// BenchmarkAtomicBatch measures the alternative the package does not use:
// a reservation as one JetStream atomic batch (nats-server 2.12+) of two
// messages on a file-backed bucket of one replica, the claim key created
// (expected last subject sequence 0) and the bucket's counter written on
// its revision, against the counter write alone ("cas"). 64 goroutines
// on 32 buckets, each bucket's writes in turn; a failed
// publish fails the benchmark, so every op committed.
func BenchmarkAtomicBatch(b *testing.B) {
	for _, mode := range []string{"cas", "batch"} {
		b.Run(mode, func(b *testing.B) {
			ns := testenv.NATSServer(b)
			nc, err := nats.Connect(ns.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx := context.Background()
			if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "B", Storage: jetstream.FileStorage}); err != nil {
				b.Fatal(err)
			}
			s, err := js.Stream(ctx, "KV_B")
			if err != nil {
				b.Fatal(err)
			}
			cfg := s.CachedInfo().Config
			cfg.AllowAtomicPublish = true
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				b.Fatal(err)
			}
			const nb = 32
			var turns [nb]sync.Mutex
			var revs [nb]uint64
			var next atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					i := int(n % nb)
					turns[i].Lock()
					counter := &nats.Msg{Subject: "$KV.B.hot.b" + strconv.Itoa(i),
						Data:   []byte(`{"total":1000000,"sold":` + strconv.FormatInt(n, 10) + `}`),
						Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: {strconv.FormatUint(revs[i], 10)}}}
					var err error
					if mode == "batch" {
						id := nuid.Next()
						err = nc.PublishMsg(&nats.Msg{Subject: "$KV.B.hot.c.o" + strconv.FormatInt(n, 10), Data: []byte(`{"n":1}`),
							Header: nats.Header{"Nats-Batch-Id": {id}, "Nats-Batch-Sequence": {"1"}, jetstream.ExpectedLastSubjSeqHeader: {"0"}}})
						counter.Header["Nats-Batch-Id"] = []string{id}
						counter.Header["Nats-Batch-Sequence"] = []string{"2"}
						counter.Header["Nats-Batch-Commit"] = []string{"1"}
					}
					var ack *jetstream.PubAck
					if err == nil {
						ack, err = js.PublishMsg(ctx, counter)
					}
					if err != nil {
						turns[i].Unlock()
						b.Error(err)
						return
					}
					revs[i] = ack.Sequence
					turns[i].Unlock()
				}
			})
		})
	}
}
