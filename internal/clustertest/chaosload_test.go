package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime/wire"
)

// load is the steady traffic of a chaos run, each stream of it as a client
// would send it: orders over HTTP (POST /v1/orders, one gateway after the
// other on failure) and over NATS (JetStream publishes on orders.submit
// with a client-chosen order_id, retried with the same Nats-Msg-Id until
// acked), sign-ins over HTTP and events over NATS. It keeps what was
// acknowledged, to be found stored exactly once afterwards, and when.
type load struct {
	gateways func() []string // base URLs of the gateways, live or not
	js       jetstream.JetStream
	run      string // prefix of this run's ids, users and items
	userBase int64

	mu        sync.Mutex
	orders    intake         // the acked orders, whatever path they came by
	signins   map[int64]bool // users whose sign-in was answered 200
	events    map[string]int // item_id -> acked "view" events
	abandoned map[string]int // item_id -> events given up unacked when the load stopped (may be stored)
	failures  map[string]int // what failed, by stream and reason
	dupOrders atomic.Int64   // order ids acked twice (never expected)
	seq       atomic.Int64
}

func newLoad(gateways func() []string, js jetstream.JetStream) *load {
	run := fmt.Sprintf("x%06d", rand.IntN(1_000_000))
	return &load{gateways: gateways, js: js, run: run,
		// Fresh users each run: a store that lived through another run
		// (Vitess in make test) holds none of their orders or sign-ins.
		userBase: 1_000_000 + rand.Int64N(1<<40),
		orders:   intake{accepted: map[string]int64{}}, signins: map[int64]bool{}, events: map[string]int{}, abandoned: map[string]int{},
		failures: map[string]int{}}
}

func (l *load) fail(what string) {
	l.mu.Lock()
	l.failures[what]++
	l.mu.Unlock()
}

func (l *load) ackedOrder(id string, user int64) {
	l.orders.mu.Lock()
	_, dup := l.orders.accepted[id]
	l.orders.mu.Unlock()
	if dup {
		l.dupOrders.Add(1)
	}
	l.orders.ok(id, user)
}

// start runs the generators until ctx ends; wait returns once they have.
func (l *load) start(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { l.httpOrders(ctx, i) })
	}
	for i := range 2 {
		wg.Go(func() { l.natsOrders(ctx, i) })
	}
	wg.Go(func() { l.httpSignIns(ctx) })
	wg.Go(func() { l.natsEvents(ctx) })
	return wg.Wait
}

// pace sleeps d, or less when ctx ends first; false then.
func pace(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// post sends body to path on one gateway after the other, starting at
// worker's, until one answers; it returns that answer.
func (l *load) post(ctx context.Context, worker int, path string, body []byte) (int, []byte, error) {
	gws := l.gateways()
	var lastErr error
	for k := range gws {
		url := gws[(worker+k)%len(gws)] + path
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, b, nil
	}
	return 0, nil, lastErr
}

func (l *load) httpOrders(ctx context.Context, worker int) {
	for pace(ctx, 5*time.Millisecond) {
		user := l.userBase + l.seq.Add(1)%50
		body := fmt.Appendf(nil, `{"user_id":%d,"items":[{"sku":"C1","qty":1,"price_cents":100}],"currency":"CNY"}`, user)
		code, b, err := l.post(ctx, worker, "/v1/orders", body)
		if err != nil {
			if ctx.Err() == nil {
				l.fail("http order: no gateway answered")
			}
			continue
		}
		if code != http.StatusAccepted {
			l.fail(fmt.Sprintf("http order: %d", code))
			continue
		}
		var r struct {
			OrderID string `json:"order_id"`
		}
		if json.Unmarshal(b, &r) != nil || r.OrderID == "" {
			l.fail("http order: 202 without order_id")
			continue
		}
		l.ackedOrder(r.OrderID, user)
	}
}

// natsOrders publishes orders with their own order_id, as API.md section 4
// says high-throughput clients do, retrying one until it is acked (the
// same Nats-Msg-Id: JetStream keeps one) and only then the next.
func (l *load) natsOrders(ctx context.Context, worker int) {
	for n := 0; pace(ctx, 5*time.Millisecond); n++ {
		id := fmt.Sprintf("%s-n%d-%06d", l.run, worker, n)
		user := l.userBase + 100 + int64(n%50)
		body := fmt.Appendf(nil, `{"order_id":%q,"user_id":%d,"items":[{"sku":"C2","qty":1,"price_cents":100}],"currency":"CNY"}`, id, user)
		for ctx.Err() == nil {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := l.js.PublishMsg(pctx, &nats.Msg{Subject: "orders.submit", Data: body,
				Header: nats.Header{jetstream.MsgIDHeader: []string{id}}})
			cancel()
			if err == nil {
				l.ackedOrder(id, user)
				break
			}
			l.fail("nats order: " + errClass(err))
			pace(ctx, 50*time.Millisecond)
		}
	}
}

func (l *load) httpSignIns(ctx context.Context) {
	for n := int64(0); pace(ctx, 20*time.Millisecond); n++ {
		user := l.userBase + 1000 + n
		code, _, err := l.post(ctx, int(n), "/v1/signin", fmt.Appendf(nil, `{"user_id":%d}`, user))
		if err != nil || code != http.StatusOK {
			if ctx.Err() == nil {
				l.fail(fmt.Sprintf("signin: %d", code))
			}
			continue
		}
		l.mu.Lock()
		l.signins[user] = true
		l.mu.Unlock()
	}
}

// natsEvents publishes view events of a few items, each message with its
// own Nats-Msg-Id and retried until acked.
func (l *load) natsEvents(ctx context.Context) {
	for n := 0; pace(ctx, 10*time.Millisecond); n++ {
		item := fmt.Sprintf("%s-i%d", l.run, n%5)
		body := fmt.Appendf(nil, `{"user_id":%d,"type":"view","item_id":%q,"ts":%q}`,
			l.userBase+2000, item, time.Now().UTC().Format(time.RFC3339))
		id := fmt.Sprintf("%s-e%06d", l.run, n)
		sent, acked := false, false
		for ctx.Err() == nil {
			sent = true
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := l.js.PublishMsg(pctx, &nats.Msg{Subject: "events.track", Data: body,
				Header: nats.Header{jetstream.MsgIDHeader: []string{id}}})
			cancel()
			if err == nil {
				l.mu.Lock()
				l.events[item]++
				l.mu.Unlock()
				acked = true
				break
			}
			l.fail("nats event: " + errClass(err))
			pace(ctx, 50*time.Millisecond)
		}
		if sent && !acked {
			// Sent at least once, never acked: it may have been stored.
			l.mu.Lock()
			l.abandoned[item]++
			l.mu.Unlock()
		}
	}
}

// errClass names an error briefly for the failure counts.
func errClass(err error) string {
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// requireTraffic fails the test unless every stream of the load got
// writes acked: checks that every acked write is stored prove nothing on
// empty sets.
func (l *load) requireTraffic(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	signins, events := len(l.signins), len(l.events)
	l.mu.Unlock()
	l.orders.mu.Lock()
	orders := len(l.orders.accepted)
	l.orders.mu.Unlock()
	if orders < 1000 || signins == 0 || events == 0 {
		t.Fatalf("too little acked to check: %d orders, %d sign-ins, %d event items", orders, signins, events)
	}
}

func (l *load) report(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("acked: %d orders, %d sign-ins, %d event items; failures seen by clients: %v",
		len(l.orders.accepted), len(l.signins), len(l.events), l.failures)
}

// get fetches path from the first gateway that answers and decodes a 200
// into v; it returns the status.
func (l *load) get(t *testing.T, path string, v any) int {
	t.Helper()
	for _, gw := range l.gateways() {
		resp, err := httpClient.Get(gw + path)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("GET %s: %v: %s", path, err, b)
			}
		}
		return resp.StatusCode
	}
	t.Fatalf("GET %s: no gateway answered", path)
	return 0
}

// verify checks through the public API that every acknowledged write is
// stored exactly once: each acked order is in its user's order list once
// (the list is read to its end, so an order stored twice under two ids
// would show as an extra one only if it was acked twice, which dupOrders
// counts), each signed-in user is signed in, and each item's view count is
// the number of acked events. It waits up to within for the stream
// consumers to catch up, then reports what is missing.
func (l *load) verify(t *testing.T, within time.Duration, admin jetstream.JetStream) {
	t.Helper()
	l.orders.mu.Lock()
	want := byUser(l.orders.accepted)
	acked := len(l.orders.accepted)
	l.orders.mu.Unlock()
	if dup := l.dupOrders.Load(); dup > 0 {
		t.Errorf("%d order ids were acked twice", dup)
	}
	deadline := time.Now().Add(within)
	for {
		missing, twice, extra := l.checkOrders(t, want)
		if (missing == 0 && twice == 0) || time.Now().After(deadline) {
			t.Logf("orders: %d acked, %d missing, %d stored twice, %d stored but not acked (a publish whose ack was lost)",
				acked, missing, twice, extra)
			if missing > 0 || twice > 0 {
				t.Errorf("%d acknowledged orders lost, %d stored twice", missing, twice)
				explainMissing(t, admin)
			}
			break
		}
		time.Sleep(time.Second)
	}
	for user := range l.signins {
		var r struct {
			First bool `json:"first"`
		}
		var code int
		var b []byte
		var err error
		// A 503 (overloaded, no instance yet) asks for a retry.
		for try := 0; try < 20; try++ {
			code, b, err = l.post(context.Background(), 0, "/v1/signin", fmt.Appendf(nil, `{"user_id":%d}`, user))
			if err == nil && code != http.StatusServiceUnavailable {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err == nil && code == http.StatusOK && json.Unmarshal(b, &r) == nil && r.First {
			t.Errorf("user %d: acked sign-in not stored (signing in again is first:true)", user)
		} else if err != nil || code != http.StatusOK {
			t.Errorf("user %d: sign-in check: %d %v", user, code, err)
		}
	}
	for item, want := range l.events {
		var got int
		for {
			var st struct {
				View int `json:"view"`
			}
			if l.get(t, "/v1/items/"+item+"/stats", &st) == http.StatusOK {
				got = st.View
			}
			if got >= want || time.Now().After(deadline.Add(5*time.Second)) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if extra := l.abandoned[item]; got < want || got > want+extra {
			t.Errorf("item %s: %d views counted, %d acked (and %d sent but never acked)", item, got, want, extra)
		}
	}
}

// checkOrders reads every order list of byUser's users to its end,
// through the public API.
func (l *load) checkOrders(t *testing.T, byUser map[int64]map[string]bool) (missing, twice, extra int) {
	return auditOrders(byUser, func(user int64, after string) ([]string, bool) {
		var r struct {
			Orders []struct {
				OrderID string `json:"order_id"`
			} `json:"orders"`
		}
		if code := l.get(t, fmt.Sprintf("/v1/users/%d/orders?size=100&after=%s", user, url.QueryEscape(after)), &r); code != http.StatusOK {
			t.Fatalf("user %d orders after %q: %d", user, after, code)
		}
		ids := make([]string, len(r.Orders))
		for i, o := range r.Orders {
			ids[i] = o.OrderID
		}
		return ids, len(r.Orders) == 100
	})
}

// explainMissing logs where acknowledged orders that are not stored may
// be: still in order-persist's backlog, or dead-lettered (dlq.order-persist
// holds them, replayable with surge dlq). js may read stream and consumer
// state (the load's client credentials may not).
func explainMissing(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if cons, err := js.Consumer(ctx, "ORDERS", "order-persist"); err == nil {
		if ci, err := cons.Info(ctx); err == nil {
			t.Logf("order-persist: %d pending, %d awaiting ack, %d redelivered", ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
		}
	}
	st, err := js.Stream(ctx, wire.StreamDLQ)
	if err != nil {
		t.Logf("stream %s: %v", wire.StreamDLQ, err)
		return
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("dlq.order-persist"))
	if err != nil {
		t.Logf("stream %s: %v", wire.StreamDLQ, err)
		return
	}
	n := info.State.Subjects["dlq.order-persist"]
	t.Logf("dlq.order-persist holds %d dead-lettered messages", n)
	if n == 0 {
		return
	}
	if m, err := st.GetLastMsgForSubject(ctx, "dlq.order-persist"); err == nil {
		t.Logf("the last one: %s after %s deliveries", m.Header.Get(wire.HeaderDLQError), m.Header.Get(wire.HeaderDLQDeliveries))
	}
}
