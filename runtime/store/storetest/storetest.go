// Package storetest is the conformance suite every store.Store backend must
// pass. A backend's test calls Run with a function that opens a store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := buntstore.Open(t.TempDir(), 4)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { _ = s.Close() })
//			return s
//		})
//	}
//
// The suite never assumes an empty database: every subtest makes its own
// random user, order, message and item ids and stream sequences, so it can
// run against a shared keyspace and rerun against the same files. Times are
// truncated to microseconds, the precision of a DATETIME(6) column.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

// Run runs the conformance suite. open is called once per subtest and must
// return a working store whose Close it has registered with t.Cleanup; the
// suite may close it earlier itself, so Close must tolerate a second call.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("Orders", func(t *testing.T) { testOrders(t, open) })
	t.Run("SignIn", func(t *testing.T) { testSignIn(t, open) })
	t.Run("SMS", func(t *testing.T) { testSMS(t, open) })
	t.Run("Events", func(t *testing.T) { testEvents(t, open) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open) })
}

// gen makes ids no other run will make: a random run tag in every string id,
// random 62-bit user ids and stream sequences. The seed is logged so a
// failure can be replayed.
type gen struct {
	rnd *rand.Rand
	tag string
	n   int
}

var seedCounter atomic.Uint64

func newGen(t *testing.T) *gen {
	t.Helper()
	seed := uint64(time.Now().UnixNano()) + seedCounter.Add(1)<<32
	t.Logf("storetest seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	return &gen{rnd: rnd, tag: fmt.Sprintf("%012x", rnd.Uint64()>>16)}
}

// id returns a fresh lowercase id, so byte order and any collation agree.
func (g *gen) id(kind string) string {
	g.n++
	return fmt.Sprintf("st-%s-%s-%05d", kind, g.tag, g.n)
}

func (g *gen) user() int64 { return g.rnd.Int64N(1<<62) + 1 }

// seq returns the first of a run of fresh stream sequences, below 2^63 so a
// signed BIGINT column holds them.
func (g *gen) seq() uint64 { return g.rnd.Uint64N(1<<62) + 1 }

// base returns a time in 2020..2030 at microsecond precision.
func (g *gen) base() time.Time {
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	return start.Add(time.Duration(g.rnd.Int64N(int64(10 * 365 * 24 * time.Hour)))).Truncate(time.Microsecond)
}

// order returns a fresh order of user created at at.
func (g *gen) order(user int64, at time.Time) store.Order {
	n := 1 + g.rnd.IntN(3)
	o := store.Order{OrderID: g.id("o"), UserID: user, Currency: "CNY", Status: "created", CreatedAt: at}
	for i := range n {
		it := store.Item{SKU: fmt.Sprintf("sku-%d", g.rnd.IntN(1000)), Qty: 1 + i, PriceCents: 100 + g.rnd.Int64N(10000)}
		o.Items = append(o.Items, it)
		o.TotalCents += int64(it.Qty) * it.PriceCents
	}
	return o
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// diffOrder describes how got differs from want, or returns "".
func diffOrder(got, want store.Order) string {
	if !got.CreatedAt.Equal(want.CreatedAt) {
		return fmt.Sprintf("created_at %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	if len(got.Items) == 0 && len(want.Items) == 0 {
		got.Items, want.Items = nil, nil // nil and empty are the same order
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

func orderIDs(os []store.Order) []string {
	ids := make([]string, len(os))
	for i, o := range os {
		ids[i] = o.OrderID
	}
	return ids
}

func testClosed(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := ctxT(t)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"PutOrders", func() error {
			_, err := s.PutOrders(ctx, []store.Order{{OrderID: "st-closed", UserID: 1, CreatedAt: time.Now()}})
			return err
		}},
		{"GetOrder", func() error { _, err := s.GetOrder(ctx, "st-closed"); return err }},
		{"ListOrders", func() error { _, err := s.ListOrders(ctx, 1, 0, 10); return err }},
		{"SignIn", func() error { _, _, err := s.SignIn(ctx, 1, "2025-01-02", "2025-01-01", time.Now()); return err }},
		{"GetSMS", func() error { _, err := s.GetSMS(ctx, "st-closed"); return err }},
		{"ApplyEvents", func() error {
			_, err := s.ApplyEvents(ctx, []store.EventBatch{{Seq: 1, Items: map[string]store.Counts{"st-closed": {View: 1}}}})
			return err
		}},
		{"ItemStats", func() error { _, err := s.ItemStats(ctx, "st-closed"); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, store.ErrClosed) {
				t.Errorf("%s after Close: err %v, want store.ErrClosed", c.name, err)
			}
		})
	}
}
