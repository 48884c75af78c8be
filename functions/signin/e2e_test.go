package signin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	_ "github.com/surgefn/surge/functions/signin"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/store"
)

type answer struct {
	UserID int64  `json:"user_id"`
	Date   string `json:"date"`
	First  bool   `json:"first"`
	Streak int    `json:"streak"`
}

func start(t *testing.T, clock *testenv.Clock, tz string) *testenv.Env {
	dir := testenv.ManifestsDir(t, func(fn *manifests.Function) {
		if tz != "" {
			fn.Spec.Config = json.RawMessage(`{"timezone":"` + tz + `"}`)
		}
	}, "signin.yaml")
	return testenv.Start(t, func(o *platform.Options) { o.Manifests = dir; o.Clock = clock })
}

func signIn(t *testing.T, env *testenv.Env, user int64) answer {
	t.Helper()
	r := env.Do(t, "POST", "/v1/signin", []byte(fmt.Sprintf(`{"user_id":%d}`, user)))
	if r.Status != 200 {
		t.Fatalf("signin = %d %s", r.Status, r.Body)
	}
	var a answer
	r.JSON(t, &a)
	return a
}

func TestSignInFlow(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
	env := start(t, clock, "")
	if a := signIn(t, env, 42); !a.First || a.Streak != 1 || a.Date != "2026-05-01" {
		t.Errorf("first call = %+v", a)
	}
	if a := signIn(t, env, 42); a.First || a.Streak != 1 {
		t.Errorf("second call = %+v", a)
	}
	clock.Add(24 * time.Hour)
	if a := signIn(t, env, 42); !a.First || a.Streak != 2 || a.Date != "2026-05-02" {
		t.Errorf("next day = %+v", a)
	}
	clock.Add(48 * time.Hour) // skips 05-03
	if a := signIn(t, env, 42); !a.First || a.Streak != 1 {
		t.Errorf("after a gap = %+v", a)
	}
	if r := env.Do(t, "POST", "/v1/signin", []byte(`{"user_id":0}`)); r.Status != 400 || r.ErrorCode() != "invalid_request" {
		t.Errorf("bad user = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/v1/signin", []byte(`{"user_id":1,"x":1}`)); r.Status != 400 {
		t.Errorf("unknown field = %d %s", r.Status, r.Body)
	}
	// Direct NATS gives the same JSON.
	m, err := env.NC.Request("fn.signin", []byte(`{"user_id":42}`), 2*time.Second)
	if err != nil || string(m.Data) != `{"user_id":42,"date":"2026-05-04","first":false,"streak":1}` {
		t.Errorf("nats = %v %s", err, m.Data)
	}
}

func TestSignInConcurrentExactlyOnce(t *testing.T) {
	clock := testenv.NewClock(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
	env := start(t, clock, "")
	const n = 100
	var wg sync.WaitGroup
	results := make(chan answer, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := env.TryDo("POST", "/v1/signin", []byte(`{"user_id":777}`))
			if err != nil || r.Status != 200 {
				t.Errorf("signin: %v", err)
				return
			}
			var a answer
			r.JSON(t, &a)
			results <- a
		}()
	}
	wg.Wait()
	close(results)
	firsts := 0
	for a := range results {
		if a.First {
			firsts++
		}
		if a.Streak != 1 {
			t.Errorf("streak %d", a.Streak)
		}
	}
	if firsts != 1 {
		t.Errorf("%d calls saw first:true, want exactly 1", firsts)
	}
	rec, err := testenv.Store[store.SignIns](t, env).GetSignIn(context.Background(), 777, "2026-05-01")
	if err != nil || rec.Streak != 1 {
		t.Errorf("stored record = %+v, %v", rec, err)
	}
}

func TestSignInTimeZone(t *testing.T) {
	// 16:30 UTC is already the next day in Shanghai.
	clock := testenv.NewClock(time.Date(2026, 5, 1, 16, 30, 0, 0, time.UTC))
	env := start(t, clock, "Asia/Shanghai")
	if a := signIn(t, env, 5); a.Date != "2026-05-02" {
		t.Errorf("date = %s, want 2026-05-02", a.Date)
	}
}
