package storetest

import (
	"context"
	"sync"
	"testing"

	"github.com/surgefn/surge/runtime/store"
)

var _ = addDomain[store.Events]("Events", RunEvents)

// RunEvents is the sub-suite of store.Events.
func RunEvents(t *testing.T, open Opener) { runDomain(t, open, testEvents, eventsClosed) }

// eventsClosed are the calls that must return store.ErrClosed after Close.
var eventsClosed = []closedCall[store.Events]{
	{"ApplyEvents", func(ctx context.Context, s store.Events) error {
		_, err := s.ApplyEvents(ctx, []store.EventBatch{{Seq: 1, Items: map[string]store.Counts{"st-closed": {View: 1}}}})
		return err
	}},
	{"ItemStats", func(ctx context.Context, s store.Events) error { _, err := s.ItemStats(ctx, "st-closed"); return err }},
}

func testEvents(t *testing.T, open func(t *testing.T) store.Events) {
	// Batches are named by index: batch i has sequence base+i and adds
	// counts(i) to items x and y, and to z when i is even.
	counts := func(i int) store.Counts {
		return store.Counts{View: int64(10 + i), Click: int64(i), Cart: 1, Buy: int64(i % 2)}
	}
	tests := []struct {
		name        string
		calls       [][]int
		wantApplied []int
		wantCounted []int // batches whose counts the items must hold
	}{
		{"one batch", [][]int{{0}}, []int{1}, []int{0}},
		{"same seq twice", [][]int{{0}, {0}}, []int{1, 0}, []int{0}},
		{"same seq twice in one call", [][]int{{1, 1}}, []int{1}, []int{1}},
		{"mixed new and old seqs", [][]int{{0, 1}, {1, 2, 0, 3}, {3, 4}}, []int{2, 2, 1}, []int{0, 1, 2, 3, 4}},
		{"empty call", [][]int{{}}, []int{0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, g, ctx := open(t), newGen(t), ctxT(t)
			base := g.seq()
			x, y, z := g.id("item"), g.id("item"), g.id("item")
			batch := func(i int) store.EventBatch {
				b := store.EventBatch{Seq: base + uint64(i), Items: map[string]store.Counts{x: counts(i), y: counts(i)}}
				if i%2 == 0 {
					b.Items[z] = counts(i)
				}
				return b
			}
			for c, call := range tt.calls {
				var batches []store.EventBatch
				for _, i := range call {
					batches = append(batches, batch(i))
				}
				n, err := s.ApplyEvents(ctx, batches)
				if err != nil {
					t.Fatalf("call %d: ApplyEvents: %v", c, err)
				}
				if n != tt.wantApplied[c] {
					t.Errorf("call %d: ApplyEvents applied %d, want %d", c, n, tt.wantApplied[c])
				}
			}
			want := map[string]store.Counts{}
			for _, i := range tt.wantCounted {
				for item, c := range batch(i).Items {
					w := want[item]
					w.Add(c)
					want[item] = w
				}
			}
			for _, item := range []string{x, y, z} {
				got, err := s.ItemStats(ctx, item)
				if err != nil {
					t.Fatalf("ItemStats: %v", err)
				}
				if got != want[item] {
					t.Errorf("ItemStats(%s) = %+v, want %+v", item, got, want[item])
				}
			}
		})
	}
	t.Run("concurrent distinct seqs", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		base := g.seq()
		items := []string{g.id("item"), g.id("item"), g.id("item")}
		const workers, calls = 8, 25
		one := store.Counts{View: 1, Click: 2, Cart: 3, Buy: 4}
		var wg sync.WaitGroup
		errs := make(chan error, workers*calls)
		applied := make([]int, workers)
		for w := range workers {
			wg.Go(func() {
				for c := range calls {
					seq := base + uint64(w*calls+c)
					b := store.EventBatch{Seq: seq, Items: map[string]store.Counts{}}
					for _, it := range items {
						b.Items[it] = one
					}
					// Each call also redelivers the previous batch.
					batches := []store.EventBatch{b}
					if c > 0 {
						batches = append(batches, store.EventBatch{Seq: seq - 1, Items: b.Items})
					}
					n, err := s.ApplyEvents(ctx, batches)
					if err != nil {
						errs <- err
						return
					}
					applied[w] += n
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("ApplyEvents: %v", err)
		}
		total := 0
		for _, n := range applied {
			total += n
		}
		if total != workers*calls {
			t.Errorf("applied %d batches, want %d", total, workers*calls)
		}
		want := store.Counts{View: workers * calls, Click: 2 * workers * calls, Cart: 3 * workers * calls, Buy: 4 * workers * calls}
		for _, it := range items {
			if got, err := s.ItemStats(ctx, it); err != nil || got != want {
				t.Errorf("ItemStats(%s) = %+v, %v; want %+v", it, got, err, want)
			}
		}
	})
	t.Run("unknown item is zero", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		if got, err := s.ItemStats(ctx, g.id("item")); err != nil || got != (store.Counts{}) {
			t.Errorf("ItemStats of unknown item = %+v, %v; want zero, nil", got, err)
		}
	})
}
