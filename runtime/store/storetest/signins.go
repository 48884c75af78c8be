package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

// day returns the date n days after 2025-02-27, so steps cross a month end.
func day(n int) string {
	return time.Date(2025, 2, 27, 12, 0, 0, 0, time.UTC).AddDate(0, 0, n).Format(time.DateOnly)
}

var _ = addDomain[store.SignIns]("SignIns", RunSignIns)

// RunSignIns is the sub-suite of store.SignIns.
func RunSignIns(t *testing.T, open Opener) { runDomain(t, open, testSignIn, signInsClosed) }

// signInsClosed are the calls that must return store.ErrClosed after Close.
var signInsClosed = []closedCall[store.SignIns]{
	{"SignIn", func(ctx context.Context, s store.SignIns) error {
		_, _, err := s.SignIn(ctx, 1, "2025-01-02", "2025-01-01", time.Now())
		return err
	}},
	{"GetSignIn", func(ctx context.Context, s store.SignIns) error {
		_, err := s.GetSignIn(ctx, 1, "2025-01-02")
		return err
	}},
}

func testSignIn(t *testing.T, open func(t *testing.T) store.SignIns) {
	type step struct {
		day, prev  int // days after the base; prev is normally day-1
		wantFirst  bool
		wantStreak int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first", []step{{1, 0, true, 1}}},
		{"again on the same day", []step{{1, 0, true, 1}, {1, 0, false, 1}, {1, 0, false, 1}}},
		{"streak over consecutive days", []step{{1, 0, true, 1}, {2, 1, true, 2}, {3, 2, true, 3}, {3, 2, false, 3}, {4, 3, true, 4}}},
		{"broken streak", []step{{1, 0, true, 1}, {2, 1, true, 2}, {4, 3, true, 1}, {5, 4, true, 2}}},
		{"late first day does not rewrite", []step{{2, 1, true, 1}, {1, 0, true, 1}, {2, 1, false, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, g, ctx := open(t), newGen(t), ctxT(t)
			user, at := g.user(), g.base()
			want := map[string]store.SignIn{}
			for i, st := range tt.steps {
				when := at.Add(time.Duration(i) * time.Minute)
				rec, first, err := s.SignIn(ctx, user, day(st.day), day(st.prev), when)
				if err != nil {
					t.Fatalf("step %d: SignIn: %v", i, err)
				}
				if first != st.wantFirst || rec.Streak != st.wantStreak {
					t.Errorf("step %d: SignIn(%s) = first %v streak %d, want first %v streak %d",
						i, day(st.day), first, rec.Streak, st.wantFirst, st.wantStreak)
				}
				if first {
					want[day(st.day)] = store.SignIn{UserID: user, Day: day(st.day), Streak: st.wantStreak, CreatedAt: when}
				}
				if w := want[day(st.day)]; !sameSignIn(rec, w) {
					t.Errorf("step %d: SignIn returned %+v, want the stored %+v", i, rec, w)
				}
			}
			for d, w := range want {
				got, err := s.GetSignIn(ctx, user, d)
				if err != nil {
					t.Fatalf("GetSignIn(%s): %v", d, err)
				}
				if !sameSignIn(got, w) {
					t.Errorf("GetSignIn(%s) = %+v, want %+v", d, got, w)
				}
			}
		})
	}
	t.Run("users isolated", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		a := g.user()
		if _, _, err := s.SignIn(ctx, a, day(1), day(0), g.base()); err != nil {
			t.Fatal(err)
		}
		rec, first, err := s.SignIn(ctx, a+1, day(2), day(1), g.base())
		if err != nil || !first || rec.Streak != 1 {
			t.Errorf("SignIn of neighbour = first %v streak %d, %v; want first, streak 1", first, rec.Streak, err)
		}
	})
	t.Run("GetSignIn not found", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		if _, err := s.GetSignIn(ctx, g.user(), day(1)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSignIn: err %v, want store.ErrNotFound", err)
		}
	})
	t.Run("100 concurrent calls", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		user, at := g.user(), g.base()
		const n = 100
		recs := make([]store.SignIn, n)
		firsts := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{}) // release all at once: the race is the point
		for i := range n {
			wg.Go(func() {
				<-start
				recs[i], firsts[i], errs[i] = s.SignIn(ctx, user, day(1), day(0), at.Add(time.Duration(i)*time.Millisecond))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if firsts[i] {
				if winner >= 0 {
					t.Fatalf("calls %d and %d both report first", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no call reports first")
		}
		// One record: every call returns the winner's, created_at included.
		for i := range n {
			if !sameSignIn(recs[i], recs[winner]) {
				t.Fatalf("call %d returned %+v, the first call %+v", i, recs[i], recs[winner])
			}
		}
		got, err := s.GetSignIn(ctx, user, day(1))
		if err != nil || !sameSignIn(got, recs[winner]) {
			t.Errorf("GetSignIn = %+v, %v; want %+v", got, err, recs[winner])
		}
	})
}

func sameSignIn(a, b store.SignIn) bool {
	return a.UserID == b.UserID && a.Day == b.Day && a.Streak == b.Streak && a.CreatedAt.Equal(b.CreatedAt)
}
