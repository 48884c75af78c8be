package stock_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	ls, _ := ledgersOn(t, n, cfg...)
	return ls
}

// ledgersOn is ledgers, and the stream they share.
func ledgersOn(t testing.TB, n int, cfg ...stock.LedgerConfig) ([]*stock.Ledger, jetstream.Stream) {
	t.Helper()
	ns := testenv.NATSServer(t)
	var out []*stock.Ledger
	var stream jetstream.Stream
	for i := range n {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		if i == 0 {
			if stream, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "LEDGER",
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
	return out, stream
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

// BenchmarkLedgerReserve is the load the KV design was measured with: 64
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

// TestLedgerMessageBounds: concurrent takes beyond a message's bounds go
// out in several messages, every take in exactly one, each message's body
// made by Encode from exactly its takes: bodies of 200 bytes a take
// against MaxBytes 2000, and takes with long retry keys against the 64 KiB
// JetStream allows for headers.
func TestLedgerMessageBounds(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string]int{} // body -> takes it was made of
	encode := func(key string, takes []stock.Taken) ([]byte, error) {
		b := []byte(strconv.Itoa(len(takes)) + ":" + takes[0].Claim + ":")
		if key == "b" { // "k" is bounded by its header alone
			b = append(b, bytes.Repeat([]byte{'x'}, 200*len(takes))...)
		}
		mu.Lock()
		bodies[string(b)] = len(takes)
		mu.Unlock()
		return b, nil
	}
	ls, stream := ledgersOn(t, 1, stock.LedgerConfig{Encode: encode, MaxBytes: 2000})
	l := ls[0]
	ctx := context.Background()
	for _, tc := range []struct {
		key  string
		n    int
		long bool // a 255-character retry key per take
	}{{"b", 200, false}, {"k", 1000, true}} {
		if _, err := l.Set(ctx, tc.key, 10_000); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for h := range tc.n {
			wg.Go(func() {
				take := stock.Take{Holder: "h" + strconv.Itoa(h), Units: 1}
				if tc.long {
					take.Key = strings.Repeat("k", 240) + strconv.Itoa(100000+h)
				}
				if _, err := l.Reserve(ctx, tc.key, take); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if lv, err := l.Levels(ctx, tc.key); err != nil || lv.Sold != int64(tc.n) {
			t.Errorf("%s: levels %+v, %v; want %d sold", tc.key, lv, err, tc.n)
		}
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]bool{}
	msgs := map[string]int{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(m.Subject, ".take") {
			continue
		}
		msgs[m.Subject]++
		h := m.Header.Get(stock.HeaderTakes)
		var takes [][4]any
		if err := json.Unmarshal([]byte(h), &takes); err != nil {
			t.Fatal(err)
		}
		if len(takes) == 0 || len(h) > 60<<10 {
			t.Errorf("message %d: %d takes in a header of %d bytes", seq, len(takes), len(h))
		}
		if m.Subject == "ledger.b.take" && len(m.Data) > 2000 && len(takes) > 1 {
			t.Errorf("message %d: body of %d bytes for %d takes, over MaxBytes 2000", seq, len(m.Data), len(takes))
		}
		mu.Lock()
		made, ok := bodies[string(m.Data)]
		mu.Unlock()
		if !ok || made != len(takes) || !strings.HasPrefix(string(m.Data), fmt.Sprintf("%d:%s:", len(takes), takes[0][0])) {
			t.Errorf("message %d: the body is not Encode's of its %d takes", seq, len(takes))
		}
		for _, tk := range takes {
			c := tk[0].(string)
			if claims[c] {
				t.Errorf("claim %s in two messages", c)
			}
			claims[c] = true
		}
	}
	// 1000 takes of about 290 header bytes need at least 5 messages.
	if len(claims) != 1200 || msgs["ledger.b.take"] < 2 || msgs["ledger.k.take"] < 5 {
		t.Errorf("%d claims in messages %v, want 1200 in several per key", len(claims), msgs)
	}
}

// TestLedgerRetryOnAnotherHost: a take retried with its retry key on
// another ledger, at once, is the first take (Replayed), whatever that
// ledger's tail has delivered yet; and a holder at its limit is told so on
// every ledger.
func TestLedgerRetryOnAnotherHost(t *testing.T) {
	ls := ledgers(t, 2)
	ctx := context.Background()
	if _, err := ls[0].Set(ctx, "r", 10); err != nil {
		t.Fatal(err)
	}
	// Both books loaded before the takes, so the second may lag behind.
	if _, err := ls[1].Levels(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		holder := "u" + strconv.Itoa(i)
		first, err := ls[0].Reserve(ctx, "r", stock.Take{Holder: holder, Units: 1, Limit: 1, Key: "k" + holder})
		if err != nil {
			t.Fatal(err)
		}
		again, err := ls[1].Reserve(ctx, "r", stock.Take{Holder: holder, Units: 1, Limit: 1, Key: "k" + holder})
		if err != nil || again.ID != first.ID || !again.Replayed {
			t.Errorf("retry on the other ledger = %+v, %v; want %s replayed", again, err, first.ID)
		}
		if _, err := ls[1].Reserve(ctx, "r", stock.Take{Holder: holder, Units: 1, Limit: 1, Key: "other"}); !errors.Is(err, stock.ErrLimit) {
			t.Errorf("a second take of %s = %v, want ErrLimit", holder, err)
		}
	}
	if lv, err := ls[1].Levels(ctx, "r"); err != nil || lv.Sold != 10 {
		t.Errorf("levels %+v, %v; want 10 sold", lv, err)
	}
}

// TestLedgerIdleKeys: a key unused for IdleAfter gives up its tail (its
// ordered consumer on the server), and its next use rebuilds the state
// from the stream.
func TestLedgerIdleKeys(t *testing.T) {
	ls, stream := ledgersOn(t, 1, stock.LedgerConfig{IdleAfter: 100 * time.Millisecond})
	l := ls[0]
	ctx := context.Background()
	if _, err := l.Set(ctx, "idle", 5); err != nil {
		t.Fatal(err)
	}
	first, err := l.Reserve(ctx, "idle", stock.Take{Holder: "a", Units: 2, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() int {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	if n := consumers(); n != 1 {
		t.Fatalf("%d consumers while the key is in use, want its tail", n)
	}
	testenv.Eventually(t, 5*time.Second, "the idle key's tail stopped", func() bool { return consumers() == 0 })
	again, err := l.Reserve(ctx, "idle", stock.Take{Holder: "a", Units: 2, Key: "k"})
	if err != nil || again.ID != first.ID || !again.Replayed {
		t.Errorf("retry after the rebuild = %+v, %v; want %s replayed", again, err, first.ID)
	}
	if lv, err := l.Levels(ctx, "idle"); err != nil || lv != (stock.Levels{Total: 5, Sold: 2}) {
		t.Errorf("levels after the rebuild = %+v, %v; want 2 of 5 sold", lv, err)
	}
}

// TestCheckStream: a stream that drops messages cannot hold a ledger.
func TestCheckStream(t *testing.T) {
	_, js := testenv.ConnectJetStream(t, testenv.NATSServer(t).ClientURL())
	ctx := context.Background()
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "KEEPS", Subjects: []string{"keeps.>"}},
		{Name: "AGES", Subjects: []string{"ages.>"}, MaxAge: time.Hour},
		{Name: "PERSUBJ", Subjects: []string{"persubj.>"}, MaxMsgsPerSubject: 1},
		{Name: "WORK", Subjects: []string{"work.>"}, Retention: jetstream.WorkQueuePolicy},
	} {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		err := stock.CheckStream(ctx, js, cfg.Name)
		if keeps := cfg.Name == "KEEPS"; keeps != (err == nil) {
			t.Errorf("CheckStream(%s) = %v", cfg.Name, err)
		}
	}
	if err := stock.CheckStream(ctx, js, "NONE"); err == nil {
		t.Error("CheckStream of a missing stream = nil")
	}
}
