package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

var _ = addDomain[store.Envelopes]("Envelopes", RunEnvelopes)

// RunEnvelopes is the sub-suite of store.Envelopes.
func RunEnvelopes(t *testing.T, open Opener) { runDomain(t, open, testEnvelopes, envelopesClosed) }

// envelopesClosed are the calls that must return store.ErrClosed after Close.
var envelopesClosed = []closedCall[store.Envelopes]{
	{"PutEnvelope", func(ctx context.Context, s store.Envelopes) error {
		return s.PutEnvelope(ctx, store.Envelope{EnvelopeID: "x", SenderID: 1, TotalCents: 1, Count: 1, CreatedAt: time.Now()})
	}},
	{"GetEnvelope", func(ctx context.Context, s store.Envelopes) error {
		_, err := s.GetEnvelope(ctx, "x")
		return err
	}},
	{"PutGrabs", func(ctx context.Context, s store.Envelopes) error {
		return s.PutGrabs(ctx, []store.Grab{{EnvelopeID: "x", UserID: 1, AmountCents: 1, At: time.Now()}})
	}},
	{"ListGrabs", func(ctx context.Context, s store.Envelopes) error {
		_, err := s.ListGrabs(ctx, "x")
		return err
	}},
}

func testEnvelopes(t *testing.T, open func(t *testing.T) store.Envelopes) {
	t.Run("envelope", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		id := g.id("env")
		if _, err := s.GetEnvelope(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetEnvelope before Put: err %v, want store.ErrNotFound", err)
		}
		want := store.Envelope{EnvelopeID: id, SenderID: g.user(), TotalCents: 10000, Count: 10, CreatedAt: g.base()}
		if err := s.PutEnvelope(ctx, want); err != nil {
			t.Fatal(err)
		}
		again := want
		again.TotalCents = 1
		if err := s.PutEnvelope(ctx, again); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetEnvelope(ctx, id)
		if err != nil || got.EnvelopeID != id || got.SenderID != want.SenderID || got.TotalCents != 10000 || got.Count != 10 || !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("GetEnvelope = %+v, %v; want the first %+v", got, err, want)
		}
	})
	t.Run("grabs idempotent and ordered", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		id, other, at := g.id("env"), g.id("env"), g.base()
		u1, u2, u3 := g.user(), g.user(), g.user()
		first := []store.Grab{
			{EnvelopeID: id, UserID: u2, AmountCents: 30, At: at.Add(2 * time.Second)},
			{EnvelopeID: id, UserID: u1, AmountCents: 50, At: at.Add(time.Second)},
			{EnvelopeID: other, UserID: u1, AmountCents: 7, At: at},
		}
		if err := s.PutGrabs(ctx, first); err != nil {
			t.Fatal(err)
		}
		// A rewrite keeps the stored amounts; a new user is added.
		if err := s.PutGrabs(ctx, []store.Grab{
			{EnvelopeID: id, UserID: u1, AmountCents: 999, At: at},
			{EnvelopeID: id, UserID: u3, AmountCents: 20, At: at.Add(3 * time.Second)},
		}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListGrabs(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.Grab{first[1], first[0], {EnvelopeID: id, UserID: u3, AmountCents: 20, At: at.Add(3 * time.Second)}}
		if len(got) != len(want) {
			t.Fatalf("ListGrabs = %+v, want %+v", got, want)
		}
		for i := range want {
			if !sameGrab(got[i], want[i]) {
				t.Errorf("grab %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		if got, err := s.ListGrabs(ctx, g.id("env")); err != nil || len(got) != 0 {
			t.Errorf("ListGrabs of an unknown envelope = %+v, %v; want none", got, err)
		}
	})
	t.Run("50 concurrent rewrites", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		id, at := g.id("env"), g.base()
		users := []int64{g.user(), g.user(), g.user()}
		var wg sync.WaitGroup
		errs := make([]error, 50)
		for i := range 50 {
			wg.Go(func() {
				var gs []store.Grab
				for j, u := range users {
					gs = append(gs, store.Grab{EnvelopeID: id, UserID: u, AmountCents: int64(j + 1), At: at.Add(time.Duration(j) * time.Second)})
				}
				errs[i] = s.PutGrabs(ctx, gs)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("writer %d: %v", i, err)
			}
		}
		got, err := s.ListGrabs(ctx, id)
		if err != nil || len(got) != len(users) {
			t.Fatalf("ListGrabs = %+v, %v; want %d grabs", got, err, len(users))
		}
	})
}

func sameGrab(a, b store.Grab) bool {
	return a.EnvelopeID == b.EnvelopeID && a.UserID == b.UserID && a.AmountCents == b.AmountCents && a.At.Equal(b.At)
}
