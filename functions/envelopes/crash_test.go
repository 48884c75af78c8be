package envelopes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// crashStore is the store config of both runtime hosts, so the second
// opens the first one's files.
const crashStore = `{"shards":4}`

// TestCrashHelperRuntime is not a test: it is the runtime host that
// TestEnvelopeCrash starts in a child process and kills with SIGKILL.
func TestCrashHelperRuntime(t *testing.T) { testenv.ServeChildRuntime(t) }

// request calls subject over NATS and sorts the outcome: 200 (the answer
// decoded into v), a function error's status, or 0 for no answer (no
// responders, a timeout: the host is down).
func request(nc *nats.Conn, subject string, body string, v any) int {
	m, err := nc.Request(subject, []byte(body), 2*time.Second)
	if err != nil {
		return 0
	}
	if e := runtime.ErrorFromHeaders(m.Header); e != nil {
		return e.Status
	}
	if json.Unmarshal(m.Data, v) != nil {
		return 0
	}
	return 200
}

// TestEnvelopeCrash: 50 grabbers, spread over half a second, go for 10
// shares while the runtime host is SIGKILLed after the first winners; a new
// host on the same store and NATS takes over, and every grabber retries
// until it has an answer. Still exactly 10 users hold a share, each always
// the same amount, the shares sum exactly, and the store records the same.
func TestEnvelopeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: starts a child process")
	}
	n := testenv.StartWith(t, platform.Options{DataDir: t.TempDir(), NATSListen: "127.0.0.1:-1",
		Manifests: testenv.ManifestsDir(t, nil, "envelopes.yaml"), AdminToken: testenv.Token, Logger: testenv.Logger(t)})
	rtData := t.TempDir()
	child := testenv.ChildRuntime(t, "TestCrashHelperRuntime", n, rtData, crashStore)

	const total, shares, grabbers = 10000, 10, 50
	var created struct {
		EnvelopeID string `json:"envelope_id"`
	}
	testenv.Eventually(t, 10*time.Second, "envelope created", func() bool {
		return request(n.NC, "fn.envelopes.create", fmt.Sprintf(`{"sender_id":1,"total_cents":%d,"count":%d}`, total, shares), &created) == 200
	})
	id := created.EnvelopeID

	var answered atomic.Int32     // 200s so far
	killed := make(chan int32, 1) // the 200s before the kill
	go func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && answered.Load() < 3; {
			time.Sleep(time.Millisecond)
		}
		_ = child.Process.Kill() // SIGKILL, mid-work
		killed <- answered.Load()
	}()
	var mu sync.Mutex
	held := map[int64]int64{} // user -> amount, from every 200 (first or not)
	firsts, unanswered := 0, 0
	var wg sync.WaitGroup
	for i := range grabbers {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 10 * time.Millisecond)
			u := int64(100 + i)
			for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				var a grabAnswer
				switch status := request(n.NC, "fn.envelopes.grab", fmt.Sprintf(`{"envelope_id":%q,"user_id":%d}`, id, u), &a); status {
				case 200:
					answered.Add(1)
					mu.Lock()
					if prev, ok := held[u]; ok && prev != a.AmountCents {
						t.Errorf("user %d got %d, then %d", u, prev, a.AmountCents)
					}
					held[u] = a.AmountCents
					if a.First {
						firsts++
					}
					mu.Unlock()
					return
				case 410:
					return
				}
			}
			mu.Lock()
			unanswered++
			mu.Unlock()
		})
	}
	before := <-killed
	_ = child.Wait()
	restart := time.Now()
	r := testenv.StartWith(t, platform.Options{NATSURL: n.P.NATSURL(), NATSAuth: n.P.NATSAuth(), DataDir: rtData, Runtime: true,
		StoreConfig: []byte(crashStore), Logger: testenv.Logger(t)})
	wg.Wait()
	t.Logf("killed after %d answers; new host up %s later; %d answers with first:true, %d users hold a share, %d grabbers unanswered",
		before, time.Since(restart).Round(time.Millisecond), firsts, len(held), unanswered)
	if unanswered > 0 {
		t.Fatalf("%d grabbers never got an answer", unanswered)
	}
	if len(held) != shares {
		t.Fatalf("%d users hold a share, want exactly %d", len(held), shares)
	}
	sum := int64(0)
	for u, amount := range held {
		sum += amount
		var a grabAnswer
		if status := request(r.NC, "fn.envelopes.grab", fmt.Sprintf(`{"envelope_id":%q,"user_id":%d}`, id, u), &a); status != 200 || a.First || a.AmountCents != amount {
			t.Errorf("repeat of %d = %d %+v, want %d first false", u, status, a, amount)
		}
	}
	if sum != total {
		t.Errorf("shares sum to %d, want %d", sum, total)
	}
	var g envelopeAnswer
	if status := request(r.NC, "fn.envelopes.get", fmt.Sprintf(`{"envelope_id":%q}`, id), &g); status != 200 || g.Taken != shares || g.RemainingCents != 0 {
		t.Errorf("get = %d %+v", status, g)
	}
	grabs, err := testenv.Store[store.Envelopes](t, r).ListGrabs(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	stored := int64(0)
	for _, gr := range grabs {
		stored += gr.AmountCents
		if held[gr.UserID] != gr.AmountCents {
			t.Errorf("stored grab %+v, want the answered %d", gr, held[gr.UserID])
		}
	}
	if len(grabs) != shares || stored != total {
		t.Errorf("store holds %d grabs summing to %d, want %d summing to %d", len(grabs), stored, shares, total)
	}
}
