// Package storetest is the conformance suite every store backend must pass:
// one sub-suite per domain (RunOrders, RunSignIns, RunMessages, RunEvents),
// each in its domain's file, and Run, which checks Ping and Close and runs
// the sub-suite of every domain the backend implements. A backend's test
// calls Run with a function that opens a store:
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
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

// Opener opens a fresh store for one subtest. It must return a working
// store whose Close it has registered with t.Cleanup; the suite may close
// it earlier itself, so Close must tolerate a second call.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite: Ping and Close, then the sub-suite of
// each domain the store open returns implements. It fails if the store
// implements none.
func Run(t *testing.T, open Opener) {
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Ping(ctxT(t)); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Ping after Close: err %v, want store.ErrClosed", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	probe := open(t)
	ran := 0
	for _, d := range domains {
		if !d.implemented(probe) {
			t.Logf("%T does not implement %s: its sub-suite is skipped", probe, d.name)
			continue
		}
		ran++
		t.Run(d.name, func(t *testing.T) { d.run(t, open) })
	}
	if ran == 0 {
		t.Errorf("%T implements no store domain", probe)
	}
}

// domain is one domain's sub-suite, for Run.
type domain struct {
	name        string // the subtest name
	implemented func(store.Store) bool
	run         func(t *testing.T, open Opener)
}

// domains are the sub-suites, sorted by name; each domain's file adds its
// own with addDomain.
var domains []domain

// addDomain adds the sub-suite run of the domain interface D to Run.
func addDomain[D any](name string, run func(t *testing.T, open Opener)) bool {
	domains = append(domains, domain{name: name, run: run, implemented: func(s store.Store) bool { _, ok := s.(D); return ok }})
	sort.Slice(domains, func(i, j int) bool { return domains[i].name < domains[j].name })
	return true
}

// narrow turns open into an opener of the domain D, failing the test when
// the store does not implement it.
func narrow[D any](open Opener) func(t *testing.T) D {
	return func(t *testing.T) D {
		t.Helper()
		d, err := store.As[D](open(t))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// runDomain runs a domain's tests on stores narrowed to D, then checks that
// the closed calls fail after Close.
func runDomain[D any](t *testing.T, open Opener, test func(t *testing.T, open func(t *testing.T) D), closed []closedCall[D]) {
	test(t, narrow[D](open))
	t.Run("Closed", func(t *testing.T) { testClosed(t, open, closed) })
}

// closedCall is one call of a domain that must fail after Close.
type closedCall[D any] struct {
	name string
	call func(ctx context.Context, d D) error
}

// testClosed closes a fresh store and checks that each call returns
// store.ErrClosed.
func testClosed[D any](t *testing.T, open Opener, calls []closedCall[D]) {
	s := open(t)
	d, err := store.As[D](s)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := ctxT(t)
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(ctx, d); !errors.Is(err, store.ErrClosed) {
				t.Errorf("%s after Close: err %v, want store.ErrClosed", c.name, err)
			}
		})
	}
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

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
