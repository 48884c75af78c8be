package stock_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/stock"
)

// buckets opens one KV bucket through each of conns fresh connections to
// one server.
func buckets(t testing.TB, conns int) []jetstream.KeyValue {
	t.Helper()
	ns := testenv.NATSServer(t)
	var out []jetstream.KeyValue
	for i := range conns {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		var kv jetstream.KeyValue
		if i == 0 {
			kv, err = js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "STOCK"})
		} else {
			kv, err = js.KeyValue(context.Background(), "STOCK")
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kv)
	}
	return out
}

// TestReserveConcurrent: 50 goroutines on 2 connections, each claim tried
// twice, 100 units: exactly 100 claims win, each once, and the levels add up.
func TestReserveConcurrent(t *testing.T) {
	kvs := buckets(t, 2)
	ctx := context.Background()
	if _, err := stock.New(kvs[0], 4).Set(ctx, "sku", 100); err != nil {
		t.Fatal(err)
	}
	const workers, claimsEach = 50, 6
	var won, replayed, soldOut atomic.Int64
	var mu sync.Mutex
	owner := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stock.New(kvs[w%2], 4)
			for c := range claimsEach {
				id := fmt.Sprintf("c-%d-%d", w, c)
				for range 2 { // the second try is a retry of the same claim
					cl, err := s.Reserve(ctx, "sku", id, 1)
					switch {
					case errors.Is(err, stock.ErrSoldOut):
						soldOut.Add(1)
					case err != nil:
						t.Error(err)
						return
					case cl.Replayed:
						replayed.Add(1)
					default:
						won.Add(1)
						mu.Lock()
						owner[id]++
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if won.Load() != 100 || replayed.Load() != 100 {
		t.Errorf("won %d, replayed %d, sold out %d; want 100 won and 100 replayed", won.Load(), replayed.Load(), soldOut.Load())
	}
	for id, n := range owner {
		if n != 1 {
			t.Errorf("claim %s won %d times", id, n)
		}
	}
	l, err := stock.New(kvs[1], 4).Get(ctx, "sku")
	if err != nil || l.Total != 100 || l.Sold != 100 || l.Remaining() != 0 {
		t.Errorf("levels %+v, %v; want 100 of 100 sold", l, err)
	}
	claims, err := stock.New(kvs[0], 4).Claims(ctx, "sku")
	if err != nil || len(claims) != 100 {
		t.Errorf("%d claims recorded (%v), want 100", len(claims), err)
	}
}

func TestSetAndReserve(t *testing.T) {
	kv := buckets(t, 1)[0]
	ctx := context.Background()
	s := stock.New(kv, 1)
	if _, err := s.Reserve(ctx, "none", "a", 1); !errors.Is(err, stock.ErrNoStock) {
		t.Errorf("reserve of a missing key: %v, want ErrNoStock", err)
	}
	if _, err := s.Reserve(ctx, "none", "a", 0); !errors.Is(err, stock.ErrBadCount) {
		t.Errorf("reserve of 0 units: %v, want ErrBadCount", err)
	}
	if _, err := s.Set(ctx, "k", 4); err != nil {
		t.Fatal(err)
	}
	a, err := s.Reserve(ctx, "k", "a", 2)
	if err != nil || a.Units != 2 || a.Replayed {
		t.Fatalf("first reserve: %+v, %v", a, err)
	}
	// The same claim with other units is the first answer again.
	if again, err := s.Reserve(ctx, "k", "a", 1); err != nil || again.Units != 2 || !again.Replayed || again.Bucket != a.Bucket {
		t.Errorf("replay: %+v, %v; want the first claim replayed", again, err)
	}
	if _, err := s.Set(ctx, "k", 1); !errors.Is(err, stock.ErrBelowSold) {
		t.Errorf("set below sold: %v, want ErrBelowSold", err)
	}
	// Lower to what is sold: sold out.
	if l, err := s.Set(ctx, "k", 2); err != nil || l.Remaining() != 0 {
		t.Fatalf("set to sold: %+v, %v", l, err)
	}
	if _, err := s.Reserve(ctx, "k", "b", 1); !errors.Is(err, stock.ErrSoldOut) {
		t.Errorf("reserve when sold out: %v", err)
	}
	// Raise: the new units can be sold.
	if _, err := s.Set(ctx, "k", 5); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := s.Reserve(ctx, "k", fmt.Sprint("r", i), 1); err != nil {
			t.Fatalf("reserve %d after raise: %v", i, err)
		}
	}
	if _, err := s.Reserve(ctx, "k", "r9", 1); !errors.Is(err, stock.ErrSoldOut) {
		t.Errorf("reserve past the raise: %v", err)
	}
	if l, err := s.Get(ctx, "k"); err != nil || l != (stock.Levels{Total: 5, Sold: 5}) {
		t.Errorf("levels %+v, %v", l, err)
	}
}

// TestRetryOtherUnits: a claim retried with fewer units never takes again,
// whichever bucket the first try fell over to.
func TestRetryOtherUnits(t *testing.T) {
	kv := buckets(t, 1)[0]
	ctx := context.Background()
	s := stock.New(kv, 3)
	if _, err := s.Set(ctx, "k", 40); err != nil {
		t.Fatal(err)
	}
	won := int64(0)
	for i := range 40 {
		id := fmt.Sprint("c", i)
		first, err := s.Reserve(ctx, "k", id, 2)
		if err == nil {
			won += first.Units
		}
		again, err2 := s.Reserve(ctx, "k", id, 1)
		if err == nil && (err2 != nil || !again.Replayed || again.Units != 2) {
			t.Fatalf("claim %s retried: %+v, %v; want the 2 units replayed", id, again, err2)
		}
		if err != nil && err2 == nil {
			won += again.Units
		}
	}
	l, err := s.Get(ctx, "k")
	if err != nil || l.Sold != won {
		t.Errorf("sold %d (%v), the claims hold %d", l.Sold, err, won)
	}
}

// TestRetryAfterRefill: a claim that fell over past an empty bucket is
// still found by its retry after Set refilled that bucket.
func TestRetryAfterRefill(t *testing.T) {
	kv := buckets(t, 1)[0]
	ctx := context.Background()
	s := stock.New(kv, 2)
	// Two claims that start at the same bucket (fnv-1a, as stock.start).
	startOf := func(id string) uint32 {
		h := fnv.New32a()
		h.Write([]byte(id))
		return h.Sum32() % 2
	}
	a, b := "a", ""
	for i := 0; b == ""; i++ {
		if id := fmt.Sprint("b", i); startOf(id) == startOf(a) {
			b = id
		}
	}
	if _, err := s.Set(ctx, "k", 2); err != nil {
		t.Fatal(err)
	}
	ca, err := s.Reserve(ctx, "k", a, 1)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := s.Reserve(ctx, "k", b, 1) // its first bucket is empty: falls over
	if err != nil || cb.Bucket == ca.Bucket {
		t.Fatalf("second claim: %+v, %v; want it in the other bucket", cb, err)
	}
	if _, err := s.Set(ctx, "k", 10); err != nil { // refills both
		t.Fatal(err)
	}
	for _, id := range []string{a, b} {
		if c, err := s.Reserve(ctx, "k", id, 1); err != nil || !c.Replayed {
			t.Errorf("retry of %s after the refill: %+v, %v; want it replayed", id, c, err)
		}
	}
	if l, err := s.Get(ctx, "k"); err != nil || l.Sold != 2 {
		t.Errorf("sold %d (%v), want 2", l.Sold, err)
	}
}

// TestManyClaimsStaySmall: one bucket takes 10x more claims than its
// value keeps; the value stays small, and every claim is replayed by its
// retry, through a second Stock (another process) too, and listed by
// Claims.
func TestManyClaimsStaySmall(t *testing.T) {
	kvs := buckets(t, 2)
	ctx := context.Background()
	s := stock.New(kvs[0], 1)
	const n = 640
	if _, err := s.Set(ctx, "k", n); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if c, err := s.Reserve(ctx, "k", fmt.Sprintf("c/%d", i), 1); err != nil || c.Replayed {
			t.Fatalf("reserve %d: %+v, %v", i, c, err)
		}
	}
	e, err := kvs[0].Get(ctx, "k.b0")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Value()) > 2048 {
		t.Errorf("bucket value is %d bytes after %d claims, want it bounded (<= 2 KiB)", len(e.Value()), n)
	}
	other := stock.New(kvs[1], 1)
	for i := range n {
		c, err := other.Reserve(ctx, "k", fmt.Sprintf("c/%d", i), 3)
		if err != nil || !c.Replayed || c.Units != 1 {
			t.Fatalf("retry of claim %d: %+v, %v; want it replayed with 1 unit", i, c, err)
		}
	}
	if l, err := other.Get(ctx, "k"); err != nil || l.Sold != n {
		t.Errorf("levels %+v, %v; want %d sold", l, err, n)
	}
	claims, err := other.Claims(ctx, "k")
	if err != nil || len(claims) != n {
		t.Errorf("Claims: %d (%v), want %d", len(claims), err, n)
	}
	for id, u := range claims {
		var i int
		if _, err := fmt.Sscanf(id, "c/%d", &i); err != nil || u != 1 {
			t.Errorf("claim %q = %d units", id, u)
		}
	}
}

// TestRefillSeenThroughCache: a Stock that last saw a bucket sold out
// (its own write) still sells the units another process's Set added.
func TestRefillSeenThroughCache(t *testing.T) {
	kvs := buckets(t, 2)
	ctx := context.Background()
	a, b := stock.New(kvs[0], 1), stock.New(kvs[1], 1)
	if _, err := b.Set(ctx, "k", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(ctx, "k", "x", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Set(ctx, "k", 3); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"y", "z"} {
		if c, err := a.Reserve(ctx, "k", id, 1); err != nil || c.Replayed {
			t.Errorf("reserve %s after the raise: %+v, %v", id, c, err)
		}
	}
	if _, err := a.Reserve(ctx, "k", "w", 1); !errors.Is(err, stock.ErrSoldOut) {
		t.Errorf("past the raise: %v, want ErrSoldOut", err)
	}
}

// BenchmarkReserve: one hot key, 64 goroutines each reserving a new claim
// per op through one Stock (one process), on an embedded nats-server
// with a file-backed bucket; the stock is 200k units so values grow with
// the run when claims stay in them.
func BenchmarkReserve(b *testing.B) {
	for _, nb := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("buckets=%d", nb), func(b *testing.B) {
			kv := buckets(b, 1)[0]
			ctx := context.Background()
			s := stock.New(kv, nb)
			if _, err := s.Set(ctx, "hot", 200_000); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.SetParallelism(32) // 64 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := "o-" + strconv.FormatInt(next.Add(1), 10)
					if _, err := s.Reserve(ctx, "hot", id, 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
