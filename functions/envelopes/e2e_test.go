package envelopes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/surgefn/surge/functions/envelopes"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/store"
)

type grabAnswer struct {
	EnvelopeID  string `json:"envelope_id"`
	UserID      int64  `json:"user_id"`
	AmountCents int64  `json:"amount_cents"`
	First       bool   `json:"first"`
}

type envelopeAnswer struct {
	EnvelopeID     string `json:"envelope_id"`
	TotalCents     int64  `json:"total_cents"`
	Count          int    `json:"count"`
	Taken          int    `json:"taken"`
	RemainingCents int64  `json:"remaining_cents"`
	Grabs          []struct {
		UserID      int64     `json:"user_id"`
		AmountCents int64     `json:"amount_cents"`
		At          time.Time `json:"at"`
	} `json:"grabs"`
}

func start(t *testing.T, auth bool) *testenv.Env {
	return testenv.StartFunctions(t, auth, "envelopes.yaml")
}

func create(t *testing.T, env *testenv.Env, total int64, count int) string {
	t.Helper()
	r := env.Do(t, "POST", "/v1/envelopes", []byte(fmt.Sprintf(`{"sender_id":1,"total_cents":%d,"count":%d}`, total, count)))
	var a struct {
		EnvelopeID string `json:"envelope_id"`
	}
	r.JSON(t, &a)
	if r.Status != 201 || a.EnvelopeID == "" {
		t.Fatalf("create = %d %s", r.Status, r.Body)
	}
	return a.EnvelopeID
}

func grab(env *testenv.Env, id string, user int64, headers ...string) (int, grabAnswer, error) {
	r, err := env.TryDo("POST", "/v1/envelopes/"+id+"/grab", []byte(fmt.Sprintf(`{"user_id":%d}`, user)), headers...)
	if err != nil {
		return 0, grabAnswer{}, err
	}
	var a grabAnswer
	if r.Status == 200 {
		err = json.Unmarshal(r.Body, &a)
	} else {
		a.EnvelopeID = r.ErrorCode()
	}
	return r.Status, a, err
}

func get(t *testing.T, env *testenv.Env, id string) envelopeAnswer {
	t.Helper()
	r := env.Do(t, "GET", "/v1/envelopes/"+id, nil)
	if r.Status != 200 {
		t.Fatalf("get = %d %s", r.Status, r.Body)
	}
	var a envelopeAnswer
	r.JSON(t, &a)
	return a
}

// checkStored checks the store's record of the envelope against the
// winners' amounts: one grab each, summing to total.
func checkStored(t *testing.T, st store.Envelopes, id string, total int64, winners map[int64]int64) {
	t.Helper()
	grabs, err := st.ListGrabs(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	sum := int64(0)
	for _, g := range grabs {
		sum += g.AmountCents
		if want, ok := winners[g.UserID]; !ok || want != g.AmountCents {
			t.Errorf("stored grab %+v, want the answered %d", g, want)
		}
	}
	if len(grabs) != len(winners) || sum != total {
		t.Errorf("store holds %d grabs summing to %d, want %d summing to %d", len(grabs), sum, len(winners), total)
	}
}

func TestEnvelopeFlow(t *testing.T) {
	env := start(t, false)
	id := create(t, env, 300, 3)
	status, a, err := grab(env, id, 2)
	if err != nil || status != 200 || !a.First || a.AmountCents < 1 || a.UserID != 2 || a.EnvelopeID != id {
		t.Fatalf("grab = %d %+v %v", status, a, err)
	}
	status, again, err := grab(env, id, 2)
	if err != nil || status != 200 || again.First || again.AmountCents != a.AmountCents {
		t.Errorf("repeat = %d %+v %v, want the same %d with first false", status, again, err, a.AmountCents)
	}
	g := get(t, env, id)
	if g.Taken != 1 || g.Count != 3 || g.TotalCents != 300 || g.RemainingCents != 300-a.AmountCents || len(g.Grabs) != 1 || g.Grabs[0].UserID != 2 {
		t.Errorf("get = %+v", g)
	}
	for _, u := range []int64{3, 4} {
		if status, _, _ := grab(env, id, u); status != 200 {
			t.Errorf("grab of %d = %d", u, status)
		}
	}
	if status, a, _ := grab(env, id, 5); status != 410 || a.EnvelopeID != "envelope_empty" {
		t.Errorf("grab after the last share = %d %s", status, a.EnvelopeID)
	}
	if g := get(t, env, id); g.Taken != 3 || g.RemainingCents != 0 {
		t.Errorf("get after the last share = %+v", g)
	}
	if status, a, _ := grab(env, "01UNKNOWN", 5); status != 404 || a.EnvelopeID != "envelope_not_found" {
		t.Errorf("grab of an unknown envelope = %d %s", status, a.EnvelopeID)
	}
	if r := env.Do(t, "GET", "/v1/envelopes/01UNKNOWN", nil); r.Status != 404 {
		t.Errorf("get of an unknown envelope = %d %s", r.Status, r.Body)
	}
	// Direct NATS with the ids in the body.
	m, err := env.NC.Request("fn.envelopes.get", []byte(`{"envelope_id":"`+id+`"}`), 2*time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"taken":3`) {
		t.Errorf("nats get = %v %s", err, m.Data)
	}
	m, err = env.NC.Request("fn.envelopes.grab", []byte(`{"envelope_id":"`+id+`","user_id":3}`), 2*time.Second)
	if err != nil || !strings.Contains(string(m.Data), `"first":false`) {
		t.Errorf("nats grab = %v %s", err, m.Data)
	}
}

func TestEnvelopeBadInput(t *testing.T) {
	env := start(t, false)
	id := create(t, env, 100, 1)
	tests := []struct{ name, path, body, wantField string }{
		{"count zero", "/v1/envelopes", `{"sender_id":1,"total_cents":100,"count":0}`, "count"},
		{"count too big", "/v1/envelopes", fmt.Sprintf(`{"sender_id":1,"total_cents":100000,"count":%d}`, envelopes.MaxCount+1), "count"},
		{"less than a cent a share", "/v1/envelopes", `{"sender_id":1,"total_cents":9,"count":10}`, "total_cents"},
		{"total too big", "/v1/envelopes", fmt.Sprintf(`{"sender_id":1,"total_cents":%d,"count":1}`, envelopes.MaxTotalCents+1), "total_cents"},
		{"sender missing", "/v1/envelopes", `{"total_cents":100,"count":1}`, "sender_id"},
		{"unknown field", "/v1/envelopes", `{"sender_id":1,"total_cents":100,"count":1,"memo":"x"}`, "memo"},
		{"grabber zero", "/v1/envelopes/" + id + "/grab", `{"user_id":0}`, "user_id"},
		{"grab with the id twice", "/v1/envelopes/" + id + "/grab", `{"user_id":1,"envelope_id":"` + id + `"}`, "envelope_id"},
		{"bad envelope id", "/v1/envelopes/a-b/grab", `{"user_id":1}`, "envelope_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := env.Do(t, "POST", tt.path, []byte(tt.body))
			if r.Status != 400 || !strings.Contains(string(r.Body), `"message":"`+tt.wantField+":") {
				t.Errorf("= %d %s, want 400 naming %s", r.Status, r.Body, tt.wantField)
			}
		})
	}
}

func TestEnvelopeOtherUserForbidden(t *testing.T) {
	env := start(t, true)
	asA := testenv.UserToken(t, 1)
	if r := env.Do(t, "POST", "/v1/envelopes", []byte(`{"sender_id":2,"total_cents":100,"count":1}`), asA); r.Status != 403 {
		t.Errorf("create for another sender = %d %s", r.Status, r.Body)
	}
	r := env.Do(t, "POST", "/v1/envelopes", []byte(`{"sender_id":1,"total_cents":100,"count":1}`), asA)
	var c struct {
		EnvelopeID string `json:"envelope_id"`
	}
	r.JSON(t, &c)
	if status, _, _ := grab(env, c.EnvelopeID, 2, asA); status != 403 {
		t.Errorf("grab for another user = %d", status)
	}
	if status, _, _ := grab(env, c.EnvelopeID, 1, asA); status != 200 {
		t.Errorf("own grab = %d", status)
	}
}

// TestEnvelopeConcurrentGrabs: 50 grabbers race for 10 shares; exactly 10
// win, the amounts sum exactly, repeats are stable, and the store holds
// the same 10 grabs.
func TestEnvelopeConcurrentGrabs(t *testing.T) {
	env := start(t, false)
	const total, shares, grabbers = 10000, 10, 50
	id := create(t, env, total, shares)
	winners := raceGrabs(t, env, id, grabbers, 1000)
	if len(winners) != shares {
		t.Fatalf("%d winners, want %d", len(winners), shares)
	}
	sum := int64(0)
	for u, amount := range winners {
		sum += amount
		status, a, err := grab(env, id, u)
		if err != nil || status != 200 || a.First || a.AmountCents != amount {
			t.Errorf("repeat of %d = %d %+v %v, want %d first false", u, status, a, err, amount)
		}
	}
	if sum != total {
		t.Errorf("shares sum to %d, want %d", sum, total)
	}
	if status, _, _ := grab(env, id, 9999); status != 410 {
		t.Errorf("late grab = %d, want 410", status)
	}
	if g := get(t, env, id); g.Taken != shares || g.RemainingCents != 0 {
		t.Errorf("get = %+v", g)
	}
	checkStored(t, testenv.Store[store.Envelopes](t, env), id, total, winners)
}

// raceGrabs releases n grabbers (users base..base+n-1) at once and returns
// the winners' amounts; every grab must be 200 first:true or 410.
func raceGrabs(t *testing.T, env *testenv.Env, id string, n int, base int64) map[int64]int64 {
	t.Helper()
	var mu sync.Mutex
	winners := map[int64]int64{}
	var wg sync.WaitGroup
	release := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-release
			u := base + int64(i)
			status, a, err := grab(env, id, u)
			switch {
			case err != nil:
				t.Errorf("grab of %d: %v", u, err)
			case status == 200 && a.First:
				mu.Lock()
				winners[u] = a.AmountCents
				mu.Unlock()
			case status != 410:
				t.Errorf("grab of %d = %d %+v", u, status, a)
			}
		})
	}
	close(release)
	wg.Wait()
	return winners
}

// TestEnvelopeCrashWindow plays a host that died right after its KV
// compare-and-set: a grab is in the state but not in the store. The seal
// (the last share's grab) still records it.
func TestEnvelopeCrashWindow(t *testing.T) {
	env := start(t, false)
	id := create(t, env, 1000, 3)
	kv, err := env.JS.KeyValue(context.Background(), envelopes.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), "e."+id)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		t.Fatal(err)
	}
	st["grabs"] = []map[string]any{{"user_id": 77, "amount_cents": 400, "at": time.Now().UTC()}}
	st["remaining_cents"] = 600
	b, _ := json.Marshal(st)
	if _, err := kv.Update(context.Background(), "e."+id, b, e.Revision()); err != nil {
		t.Fatal(err)
	}
	winners := map[int64]int64{77: 400}
	for _, u := range []int64{78, 79} {
		status, a, err := grab(env, id, u)
		if err != nil || status != 200 {
			t.Fatalf("grab of %d = %d %v", u, status, err)
		}
		winners[u] = a.AmountCents
	}
	checkStored(t, testenv.Store[store.Envelopes](t, env), id, 1000, winners)
	if status, a, _ := grab(env, id, 77); status != 200 || a.First || a.AmountCents != 400 {
		t.Errorf("the crashed grabber's retry = %d %+v, want 400 first false", status, a)
	}
}
