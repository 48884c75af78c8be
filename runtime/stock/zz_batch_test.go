package stock_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/surgefn/surge/internal/testenv"
)

func BenchmarkAtomicBatchRaw(b *testing.B) {
	for _, mode := range []string{"cas-only", "batch2"} {
		b.Run(mode, func(b *testing.B) {
			ns := testenv.NATSServer(b)
			nc, _ := nats.Connect(ns.ClientURL())
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx := context.Background()
			if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "B", Storage: jetstream.FileStorage}); err != nil {
				b.Fatal(err)
			}
			s, _ := js.Stream(ctx, "KV_B")
			cfg := s.CachedInfo().Config
			cfg.AllowAtomicPublish = true
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				b.Fatal(err)
			}
			const nb = 32
			var mus [nb]sync.Mutex
			var revs [nb]uint64
			var next atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					i := int(n % nb)
					mus[i].Lock()
					val, _ := json.Marshal(map[string]int64{"total": 1000000, "sold": n})
					var ack *jetstream.PubAck
					var err error
					if mode == "cas-only" {
						ack, err = js.PublishMsg(ctx, &nats.Msg{Subject: "$KV.B.hot.b" + strconv.Itoa(i), Data: val,
							Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(revs[i], 10)}}})
					} else {
						id := nuid.Next()
						m1 := &nats.Msg{Subject: "$KV.B.hot.c.o" + strconv.FormatInt(n, 10), Data: []byte(`{"n":1}`),
							Header: nats.Header{"Nats-Batch-Id": {id}, "Nats-Batch-Sequence": {"1"}, jetstream.ExpectedLastSubjSeqHeader: {"0"}}}
						if err = nc.PublishMsg(m1); err == nil {
							ack, err = js.PublishMsg(ctx, &nats.Msg{Subject: "$KV.B.hot.b" + strconv.Itoa(i), Data: val,
								Header: nats.Header{"Nats-Batch-Id": {id}, "Nats-Batch-Sequence": {"2"}, "Nats-Batch-Commit": {"1"},
									jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(revs[i], 10)}}})
						}
					}
					if err != nil {
						mus[i].Unlock()
						b.Error(err)
						return
					}
					revs[i] = ack.Sequence
					mus[i].Unlock()
				}
			})
		})
	}
}
