package orders_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/functions/orders"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

// batchBody is a JSON array of the given order bodies.
func batchBody(bodies ...[]byte) []byte {
	out := []byte{'['}
	for i, b := range bodies {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	return append(out, ']')
}

// TestBatchedSubmit publishes orders.submit messages that each carry an
// array of orders (API.md section 4): 40 batches of 100, every order of
// the last 10 batches also sent again in other batches under new
// Nats-Msg-Ids, one batch re-published under its own Nats-Msg-Id, and
// invalid orders inside batches. Every valid order is stored exactly once;
// each invalid one is dead-lettered on its own, naming its index and
// field, while the rest of its batch is stored; a message that is not an
// array of 1 to 1000 orders is dead-lettered whole.
func TestBatchedSubmit(t *testing.T) {
	env := start(t)
	const batches, per, users = 40, 100, 50
	user := func(n int) int64 { return int64(7000 + n%users) }
	var msgs []*nats.Msg
	want := map[int64][]string{}
	for b := range batches {
		bodies := make([][]byte, per)
		for k := range per {
			n := b*per + k
			id := fmt.Sprintf("b-%05d", n)
			bodies[k] = submitBody(id, user(n), n%5+1)
			want[user(n)] = append(want[user(n)], id)
		}
		msgs = append(msgs, submitMsg(fmt.Sprintf("batch-%d", b), batchBody(bodies...)))
	}
	// The orders of batches 30-39 again, regrouped under new batch ids.
	for b := range 5 {
		var bodies [][]byte
		for k := range 2 * per {
			n := 30*per + b*2*per + k
			bodies = append(bodies, submitBody(fmt.Sprintf("b-%05d", n), user(n), n%5+1))
		}
		msgs = append(msgs, submitMsg(fmt.Sprintf("regrouped-%d", b), batchBody(bodies...)))
	}
	msgs = append(msgs, submitMsg("batch-7", msgs[7].Data)) // JetStream's de-duplication
	for i, ack := range testenv.PublishAsync(t, env.JS, msgs) {
		if ack == nil {
			t.Fatalf("message %d not acked", i)
		}
	}

	// Invalid orders inside a batch: index -> field.
	mixed := [][]byte{
		submitBody("m-0", 42, 1),
		[]byte(`{"order_id":"m-1","user_id":42,"items":[{"sku":"A","qty":0,"price_cents":1}],"currency":"USD"}`),
		submitBody("m-2", 42, 2),
		[]byte(`{"order_id":"m-3","user_id":-1,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"USD"}`),
		[]byte(`"not an order"`),
		submitBody("m-5", 43, 3),
	}
	wantDead := map[int]string{1: "items[0].qty", 3: "user_id", 4: "body"}
	want[42] = append(want[42], "m-0", "m-2")
	want[43] = append(want[43], "m-5")
	ctx := context.Background()
	if _, err := env.JS.PublishMsg(ctx, submitMsg("mixed", batchBody(mixed...))); err != nil {
		t.Fatal(err)
	}
	tooMany := make([][]byte, orders.MaxSubmitBatch+1)
	for i := range tooMany {
		tooMany[i] = submitBody(fmt.Sprintf("t-%04d", i), 44, 1)
	}
	wholeBad := map[string]string{ // Nats-Msg-Id -> what the reason says
		"empty":    "empty array",
		"too-many": "at most 1000",
		"broken":   "JSON array",
		// One item not JSON: the message is not an array of orders, and
		// its valid order w-0 is not stored either.
		"broken-item": "JSON array",
	}
	brokenItem := batchBody(submitBody("w-0", 45, 1), []byte(`{"order_id": }`))
	for id, body := range map[string][]byte{"empty": []byte(" [ ] "), "too-many": batchBody(tooMany...), "broken": []byte(`[{"order_id":`), "broken-item": brokenItem} {
		if _, err := env.JS.PublishMsg(ctx, submitMsg(id, body)); err != nil {
			t.Fatal(err)
		}
	}

	waitDrained(t, env.JS, 30*time.Second)
	st := testenv.Store[store.Orders](t, env)
	if total := assertStoredExactly(t, st, want); total != batches*per+3 {
		t.Errorf("%d orders stored, want %d", total, batches*per+3)
	}
	for _, id := range []string{"m-1", "m-3", "t-0000", "w-0"} {
		if _, err := st.GetOrder(ctx, id); err == nil {
			t.Errorf("invalid order %s was stored", id)
		}
	}

	cons, err := env.JS.OrderedConsumer(ctx, "DLQ", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"dlq.order-persist"}})
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := cons.Fetch(len(wantDead)+len(wholeBad)+1, jetstream.FetchMaxWait(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	gotParts := map[int]string{}
	gotWhole := map[string]string{}
	for m := range fetched.Messages() {
		h := m.Headers()
		switch id := h.Get(wire.HeaderDLQMsgID); {
		case id == "mixed":
			i, err := strconv.Atoi(h.Get(wire.HeaderDLQIndex))
			if err != nil {
				t.Errorf("dead letter of batch mixed without an index: %v", h)
				continue
			}
			if _, dup := gotParts[i]; dup {
				t.Errorf("item %d dead-lettered twice", i)
			}
			gotParts[i] = h.Get(wire.HeaderDLQError)
			if string(m.Data()) != string(mixed[i]) {
				t.Errorf("dead letter of item %d carries %q, want the item %q", i, m.Data(), mixed[i])
			}
		case wholeBad[id] != "":
			if h.Get(wire.HeaderDLQIndex) != "" {
				t.Errorf("dead letter of message %s has an index", id)
			}
			gotWhole[id] = h.Get(wire.HeaderDLQError)
		default:
			t.Errorf("unexpected dead letter %s: %q", id, m.Data())
		}
	}
	for i, field := range wantDead {
		if r := gotParts[i]; !strings.HasPrefix(r, fmt.Sprintf("item %d: %s: ", i, field)) {
			t.Errorf("item %d: dead letter reason %q, want it to name item %d and %s", i, r, i, field)
		}
	}
	if len(gotParts) != len(wantDead) {
		t.Errorf("%d items of batch mixed dead-lettered, want %d", len(gotParts), len(wantDead))
	}
	for id, says := range wholeBad {
		if r := gotWhole[id]; !strings.Contains(r, says) {
			t.Errorf("message %s: dead letter reason %q, want it to say %q", id, r, says)
		}
	}
	// The admin API names each item's position.
	var page struct {
		DeadLetters []struct {
			Index   *int   `json:"index"`
			Payload string `json:"payload"`
			MsgID   string `json:"msg_id"`
		} `json:"dead_letters"`
	}
	env.Do(t, "GET", "/admin/dlq?function=order-persist", nil, "Authorization: Bearer "+testenv.Token).JSON(t, &page)
	indexed := 0
	for _, d := range page.DeadLetters {
		if d.MsgID != "mixed" {
			continue
		}
		if d.Index == nil || string(mixed[*d.Index]) != d.Payload {
			t.Errorf("GET /admin/dlq: item of batch mixed with index %v and payload %q", d.Index, d.Payload)
			continue
		}
		indexed++
	}
	if indexed != len(wantDead) {
		t.Errorf("GET /admin/dlq lists %d items of batch mixed with their index, want %d", indexed, len(wantDead))
	}
}

// TestGroupCommittedAccept: concurrent POST /v1/orders are published
// together (fewer ORDERS messages than orders, some holding several), and
// every accepted order is stored exactly once, with an Idempotency-Key
// still giving one order however often it is sent.
func TestGroupCommittedAccept(t *testing.T) {
	env := start(t)
	const callers, per, users = 64, 10, 16
	type result struct {
		user int64
		id   string
	}
	results := make(chan result, callers*per)
	errs := make(chan string, callers*per)
	done := make(chan struct{})
	for c := range callers {
		go func() {
			defer func() { done <- struct{}{} }()
			for k := range per {
				user := int64(8000 + (c*per+k)%users)
				r, err := env.TryDo("POST", "/v1/orders", orderBody(user, "G1", 1, 100))
				if err != nil || r.Status != 202 {
					errs <- fmt.Sprintf("POST: %v %v", err, r)
					continue
				}
				var a accepted
				r.JSON(t, &a)
				results <- result{user, a.OrderID}
			}
		}()
	}
	for range callers {
		<-done
	}
	close(results)
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	want := map[int64][]string{}
	n := 0
	for r := range results {
		want[r.user] = append(want[r.user], r.id)
		n++
	}
	// The same Idempotency-Key from many callers at once: one order.
	const key = "group-commit-key"
	same := make(chan string, 16)
	for range 16 {
		go func() {
			r, err := env.TryDo("POST", "/v1/orders", orderBody(8100, "G2", 2, 100), "Idempotency-Key: "+key)
			if err != nil || r.Status != 202 {
				same <- fmt.Sprintf("error %v %v", err, r)
				return
			}
			var a accepted
			r.JSON(t, &a)
			same <- a.OrderID
		}()
	}
	idemID := <-same
	for range 15 {
		if got := <-same; got != idemID {
			t.Errorf("Idempotency-Key gave order %s and %s", idemID, got)
		}
	}
	want[8100] = []string{idemID}

	waitDrained(t, env.JS, 30*time.Second)
	st := testenv.Store[store.Orders](t, env)
	if total := assertStoredExactly(t, st, want); total != n+1 {
		t.Errorf("%d orders stored, want %d", total, n+1)
	}
	s, err := env.JS.Stream(context.Background(), "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if msgs := info.State.Msgs; msgs >= uint64(n) {
		t.Errorf("%d ORDERS messages for %d concurrent orders: none were published together", msgs, n)
	} else {
		t.Logf("%d orders from %d concurrent callers in %d ORDERS messages", n+1, callers, msgs)
	}
}
