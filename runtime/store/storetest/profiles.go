package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

var _ = addDomain[store.Profiles]("Profiles", RunProfiles)

// RunProfiles is the sub-suite of store.Profiles.
func RunProfiles(t *testing.T, open Opener) { runDomain(t, open, testProfiles, profilesClosed) }

// profilesClosed are the calls that must return store.ErrClosed after Close.
var profilesClosed = []closedCall[store.Profiles]{
	{"GetProfile", func(ctx context.Context, s store.Profiles) error {
		_, err := s.GetProfile(ctx, 1)
		return err
	}},
	{"PutProfile", func(ctx context.Context, s store.Profiles) error {
		_, err := s.PutProfile(ctx, store.Profile{UserID: 1, Name: "x", UpdatedAt: time.Now()}, 0)
		return err
	}},
}

func testProfiles(t *testing.T, open func(t *testing.T) store.Profiles) {
	t.Run("GetProfile not found", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		if _, err := s.GetProfile(ctx, g.user()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetProfile: err %v, want store.ErrNotFound", err)
		}
	})
	t.Run("versions", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		user, at := g.user(), g.base()
		steps := []struct {
			name        string
			level       int
			expect      int64
			wantVersion int64 // of the stored profile after the step
			wantErr     bool
		}{
			{"Ann 😀", 1, 1, 0, true}, // no profile yet: version 0
			{"Ann 😀", 1, 0, 1, false},
			{"Ann", 2, 0, 1, true}, // exists: a create conflicts
			{"Bea", 2, 1, 2, false},
			{"Cid", 3, 1, 2, true}, // stale
			{"Cid", 3, 3, 2, true}, // ahead
			{"Cid", 3, 2, 3, false},
		}
		var want store.Profile
		for i, st := range steps {
			p := store.Profile{UserID: user, Name: st.name, Level: st.level, UpdatedAt: at.Add(time.Duration(i) * time.Second)}
			got, err := s.PutProfile(ctx, p, st.expect)
			if st.wantErr {
				if !errors.Is(err, store.ErrVersionConflict) {
					t.Fatalf("step %d: PutProfile(expect %d) err %v, want ErrVersionConflict", i, st.expect, err)
				}
			} else {
				if err != nil {
					t.Fatalf("step %d: PutProfile(expect %d): %v", i, st.expect, err)
				}
				want = p
				want.Version = st.expect + 1
			}
			if got.Version != st.wantVersion || (st.wantVersion > 0 && !sameProfile(got, want)) {
				t.Errorf("step %d: PutProfile returned %+v, want %+v", i, got, want)
			}
			if st.wantVersion == 0 {
				continue
			}
			if stored, err := s.GetProfile(ctx, user); err != nil || !sameProfile(stored, want) {
				t.Errorf("step %d: GetProfile = %+v, %v; want %+v", i, stored, err, want)
			}
		}
	})
	t.Run("users isolated", func(t *testing.T) {
		s, g, ctx := open(t), newGen(t), ctxT(t)
		a := g.user()
		if _, err := s.PutProfile(ctx, store.Profile{UserID: a, Name: "a", UpdatedAt: g.base()}, 0); err != nil {
			t.Fatal(err)
		}
		if p, err := s.PutProfile(ctx, store.Profile{UserID: a + 1, Name: "b", UpdatedAt: g.base()}, 0); err != nil || p.Version != 1 {
			t.Errorf("PutProfile of neighbour = %+v, %v; want version 1", p, err)
		}
	})
	for _, expect := range []int64{0, 1} {
		t.Run(fmt.Sprintf("50 concurrent writers at version %d", expect), func(t *testing.T) {
			s, g, ctx := open(t), newGen(t), ctxT(t)
			user, at := g.user(), g.base()
			if expect == 1 {
				if _, err := s.PutProfile(ctx, store.Profile{UserID: user, Name: "seed", UpdatedAt: at}, 0); err != nil {
					t.Fatal(err)
				}
			}
			const n = 50
			errs := make([]error, n)
			got := make([]store.Profile, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					got[i], errs[i] = s.PutProfile(ctx, store.Profile{UserID: user, Name: "w", Level: i, UpdatedAt: at}, expect)
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i := range n {
				switch {
				case errs[i] == nil:
					if winner >= 0 {
						t.Fatalf("writers %d and %d both won", winner, i)
					}
					winner = i
				case !errors.Is(errs[i], store.ErrVersionConflict):
					t.Fatalf("writer %d: %v", i, errs[i])
				}
			}
			if winner < 0 {
				t.Fatal("no writer won")
			}
			stored, err := s.GetProfile(ctx, user)
			if err != nil || stored.Version != expect+1 || stored.Level != winner {
				t.Errorf("GetProfile = %+v, %v; want version %d level %d", stored, err, expect+1, winner)
			}
			for i := range n {
				if i != winner && got[i].Version != expect+1 {
					t.Errorf("loser %d saw version %d, want %d", i, got[i].Version, expect+1)
				}
			}
		})
	}
}

func sameProfile(a, b store.Profile) bool {
	return a.UserID == b.UserID && a.Name == b.Name && a.Level == b.Level && a.Version == b.Version && a.UpdatedAt.Equal(b.UpdatedAt)
}
