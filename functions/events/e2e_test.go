package events_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	_ "github.com/surgefn/surge/functions/echo"
	"github.com/surgefn/surge/functions/events"
	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

// manifestDir holds echo.yaml and events.yaml, edit applied to each function.
func manifestDir(t *testing.T, edit func(fn *manifests.Function)) string {
	return testenv.ManifestsDir(t, edit, "echo.yaml", "events.yaml")
}

type stats struct {
	ItemID string `json:"item_id"`
	store.Counts
}

func ev(user int, typ, item string) string {
	return fmt.Sprintf(`{"user_id":%d,"type":%q,"item_id":%q,"ts":"2025-03-01T10:00:00Z"}`, user, typ, item)
}

func statsOf(t *testing.T, env *testenv.Env, item string) stats {
	t.Helper()
	r := env.Do(t, "GET", "/v1/items/"+url.PathEscape(item)+"/stats", nil)
	if r.Status != 200 {
		t.Fatalf("stats %s = %d %s", item, r.Status, r.Body)
	}
	var s stats
	r.JSON(t, &s)
	return s
}

func waitStats(t *testing.T, env *testenv.Env, item string, want store.Counts) time.Duration {
	t.Helper()
	start := time.Now()
	var got stats
	testenv.Eventually(t, 2*time.Second, fmt.Sprintf("stats of %s = %+v", item, want), func() bool {
		got = statsOf(t, env, item)
		return got.Counts == want
	})
	if got.ItemID != item {
		t.Errorf("item_id = %q, want %q", got.ItemID, item)
	}
	return time.Since(start)
}

func TestE2EIngestDirectPublishAndStats(t *testing.T) {
	start := time.Now()
	env := testenv.Start(t, func(o *platform.Options) { o.Manifests = manifestDir(t, nil) })
	ctx := context.Background()

	// HTTP: one batch.
	body := "[" + strings.Join([]string{ev(1, "view", "A1"), ev(2, "view", "A1"), ev(1, "click", "A1"),
		ev(1, "cart", "sku.42:x"), ev(3, "buy", "商品-7")}, ",") + "]"
	r := env.Do(t, "POST", "/v1/events", []byte(body))
	if r.Status != 202 || string(r.Body) != `{"accepted":5}` {
		t.Fatalf("POST /v1/events = %d %s", r.Status, r.Body)
	}
	lag := waitStats(t, env, "A1", store.Counts{View: 2, Click: 1})
	t.Logf("stats visible %s after the POST", lag)
	waitStats(t, env, "sku.42:x", store.Counts{Cart: 1})
	waitStats(t, env, "商品-7", store.Counts{Buy: 1})

	// HTTP: a single event.
	if r := env.Do(t, "POST", "/v1/events", []byte(ev(4, "buy", "A1"))); r.Status != 202 || string(r.Body) != `{"accepted":1}` {
		t.Fatalf("single = %d %s", r.Status, r.Body)
	}
	// Direct JetStream publishes: a single event and an array.
	if _, err := env.JS.Publish(ctx, events.SubjectTrack, []byte(ev(5, "view", "A1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := env.JS.Publish(ctx, events.SubjectTrack, []byte("["+ev(5, "cart", "A1")+","+ev(6, "cart", "B2")+"]")); err != nil {
		t.Fatal(err)
	}
	waitStats(t, env, "A1", store.Counts{View: 3, Click: 1, Cart: 1, Buy: 1})
	waitStats(t, env, "B2", store.Counts{Cart: 1})
	if s := statsOf(t, env, "never-seen"); s.Counts != (store.Counts{}) {
		t.Errorf("unknown item = %+v", s)
	}

	// Over NATS, the stats subject answers with the same JSON.
	msg, err := env.NC.RequestMsg(&nats.Msg{Subject: "fn.items.stats", Header: nats.Header{wire.HeaderParamPrefix + "item_id": {"B2"}}}, 2*time.Second)
	if err != nil || string(msg.Data) != `{"item_id":"B2","view":0,"click":0,"cart":1,"buy":0}` {
		t.Errorf("NATS stats = %v %s", err, msg.Data)
	}

	// Invalid input: a 400 naming the field over HTTP; the DLQ, with the
	// reason, for a direct publish.
	// Its valid first event is on an item never read, so no in-process
	// cache can answer for it below.
	bad := "[" + ev(1, "view", "Z9") + "," + ev(1, "like", "Z9") + "]"
	if r := env.Do(t, "POST", "/v1/events", []byte(bad)); r.Status != 400 || !strings.Contains(string(r.Body), `[1].type: `) {
		t.Errorf("bad POST = %d %s", r.Status, r.Body)
	}
	if r := env.Do(t, "POST", "/v1/events", []byte(`[]`)); r.Status != 400 {
		t.Errorf("empty POST = %d %s", r.Status, r.Body)
	}
	if _, err := env.JS.Publish(ctx, events.SubjectTrack, []byte(bad)); err != nil {
		t.Fatal(err)
	}
	dlq, err := env.JS.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 3*time.Second, "invalid message dead-lettered", func() bool {
		m, err := dlq.GetLastMsgForSubject(ctx, "dlq.events-aggregate")
		return err == nil && strings.Contains(m.Header.Get(wire.HeaderDLQError), "[1].type") &&
			m.Header.Get(wire.HeaderDLQDeliveries) == "1" && string(m.Data) == bad
	})
	// ...and its valid first event was not counted.
	if s := statsOf(t, env, "Z9"); s.View != 0 {
		t.Errorf("Z9 views = %d after a rejected message, want 0", s.View)
	}
	t.Logf("took %s", time.Since(start))
}

func TestE2EBulkIngest(t *testing.T) {
	env := testenv.Start(t, func(o *platform.Options) { o.Manifests = manifestDir(t, nil) })
	const posts, per = 20, 1000
	parts := make([]string, per)
	perPost := map[string]store.Counts{}
	for i := range parts {
		e := events.Event{UserID: int64(i + 1), Type: []string{"view", "click", "cart", "buy"}[i%4], ItemID: fmt.Sprintf("bulk-%d", i%10)}
		parts[i] = ev(int(e.UserID), e.Type, e.ItemID)
		events.Count([]events.Event{e}, perPost)
	}
	want := map[string]store.Counts{}
	for item, c := range perPost {
		for range posts {
			w := want[item]
			w.Add(c)
			want[item] = w
		}
	}
	body := []byte("[" + strings.Join(parts, ",") + "]")
	start := time.Now()
	var wg sync.WaitGroup
	for range posts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := env.TryDo("POST", "/v1/events", body)
			if err != nil || r.Status != 202 {
				t.Errorf("POST = %v %v", err, r)
			}
		}()
	}
	wg.Wait()
	posted := time.Since(start)
	lag := waitStats(t, env, "bulk-0", want["bulk-0"])
	for item, c := range want {
		waitStats(t, env, item, c)
	}
	t.Logf("%d events posted in %s; totals visible %s later", posts*per, posted, lag)
}

// failAfterApply wraps the real aggregator and fails every batch holding a
// first delivery after the aggregator has written it to the store: the
// runtime redelivers those messages, and the store must skip their seqs.
type failAfterApply struct {
	events.Aggregate
	mu   sync.Mutex
	seen map[uint64][]int // seq -> delivery counts handled
}

var flaky = &failAfterApply{seen: map[uint64][]int{}}

func init() {
	runtime.Register(runtime.Module{ID: "test.events.fail-after-apply", New: func() any {
		flaky.Aggregate = events.Aggregate{}
		return flaky
	}})
}

func (f *failAfterApply) HandleBatch(ctx context.Context, batch []*runtime.Msg) error {
	if err := f.Aggregate.HandleBatch(ctx, batch); err != nil {
		return err
	}
	first := false
	f.mu.Lock()
	for _, m := range batch {
		f.seen[m.Seq] = append(f.seen[m.Seq], m.Delivered)
		first = first || m.Delivered == 1
	}
	f.mu.Unlock()
	if first {
		return errors.New("failing after the store write on purpose")
	}
	return nil
}

func TestE2ERedeliveryIsNotDoubleCounted(t *testing.T) {
	flaky.mu.Lock()
	flaky.seen = map[uint64][]int{} // -count=N reruns
	flaky.mu.Unlock()
	dir := manifestDir(t, func(fn *manifests.Function) {
		if fn.Metadata.Name == "events-aggregate" {
			fn.Spec.Handler = "test.events.fail-after-apply"
			fn.Spec.Retry.Backoff = []manifests.Duration{manifests.Duration(50 * time.Millisecond)}
		}
	})
	env := testenv.Start(t, func(o *platform.Options) { o.Manifests = dir })
	ctx := context.Background()
	body := "[" + ev(1, "view", "R1") + "," + ev(2, "view", "R1") + "," + ev(3, "buy", "R1") + "]"
	if r := env.Do(t, "POST", "/v1/events", []byte(body)); r.Status != 202 {
		t.Fatalf("POST = %d %s", r.Status, r.Body)
	}
	if _, err := env.JS.Publish(ctx, events.SubjectTrack, []byte(ev(4, "view", "R1"))); err != nil {
		t.Fatal(err)
	}
	// Both messages are acked after their second delivery...
	testenv.Eventually(t, 3*time.Second, "messages acked", func() bool {
		c, err := env.JS.Consumer(ctx, "EVENTS", "events-aggregate")
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.AckFloor.Stream == 2 && ci.NumAckPending == 0 && ci.NumPending == 0
	})
	flaky.mu.Lock()
	for seq, ds := range flaky.seen {
		if len(ds) != 2 || ds[0] != 1 || ds[1] != 2 {
			t.Errorf("seq %d handled with deliveries %v, want [1 2]", seq, ds)
		}
	}
	if len(flaky.seen) != 2 {
		t.Errorf("%d messages handled, want 2", len(flaky.seen))
	}
	flaky.mu.Unlock()
	// ...and counted once, in the store and through the route.
	want := store.Counts{View: 3, Buy: 1}
	if c, err := testenv.Store[store.Events](t, env).ItemStats(ctx, "R1"); err != nil || c != want {
		t.Errorf("store R1 = %+v, %v; want %+v", c, err, want)
	}
	waitStats(t, env, "R1", want)
	if dead := deadCount(t, env); dead != 0 {
		t.Errorf("%d dead letters, want none", dead)
	}
}

func deadCount(t *testing.T, env *testenv.Env) uint64 {
	t.Helper()
	s, err := env.JS.Stream(context.Background(), wire.StreamDLQ)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
