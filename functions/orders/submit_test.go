package orders_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

// publishAsync publishes msgs to orders.submit without waiting for each
// ack, then returns the order id of every acked message (one entry per
// message; a duplicate ack counts, the order is in the stream) and how
// many acks JetStream marked as duplicates.
func publishAsync(t testing.TB, js jetstream.JetStream, msgs []*nats.Msg, orderIDs []string) (acked []string, dups int) {
	t.Helper()
	for i, ack := range testenv.PublishAsync(t, js, msgs) {
		if ack == nil {
			continue
		}
		acked = append(acked, orderIDs[i])
		if ack.Duplicate {
			dups++
		}
	}
	return acked, dups
}

func submitMsg(msgID string, data []byte) *nats.Msg {
	return &nats.Msg{Subject: "orders.submit", Data: data, Header: nats.Header{runtime.HeaderMsgID: {msgID}}}
}

// TestDirectSubmit: 2,000 direct publishes, 200 of them duplicates (100
// caught by JetStream's de-duplication, 100 under a new Nats-Msg-Id that
// defeats it); every acked order is stored exactly once, and invalid
// submissions are dead-lettered with the field at fault.
func TestDirectSubmit(t *testing.T) {
	env := start(t)
	const unique, users = 1800, 40
	var msgs []*nats.Msg
	var orderIDs []string
	user := func(n int) int64 { return int64(5000 + n%users) }
	for n := range unique {
		id := fmt.Sprintf("d-%04d", n)
		data := submitBody(id, user(n), n%9+1)
		if n%2 == 0 { // half carry their own created_at
			data = append(data[:len(data)-1], fmt.Sprintf(`,"created_at":"2025-06-01T00:00:%02d.%06dZ"}`, n%60, n)...)
		}
		msgs, orderIDs = append(msgs, submitMsg(id, data)), append(orderIDs, id)
	}
	for k := range 100 { // same Nats-Msg-Id, within the duplicate window
		i := k * 17 % unique
		msgs, orderIDs = append(msgs, submitMsg(orderIDs[i], msgs[i].Data)), append(orderIDs, orderIDs[i])
	}
	for k := range 100 { // another Nats-Msg-Id, same order_id
		i := (k*29 + 5) % unique
		msgs, orderIDs = append(msgs, submitMsg(orderIDs[i]+"-retry", msgs[i].Data)), append(orderIDs, orderIDs[i])
	}
	if len(msgs) != 2000 {
		t.Fatalf("%d messages", len(msgs))
	}
	start := time.Now()
	acked, dups := publishAsync(t, env.JS, msgs, orderIDs)
	if dups != 100 {
		t.Errorf("JetStream reported %d duplicates, want 100", dups)
	}
	if len(acked) != 2000 {
		t.Errorf("%d of 2000 publishes acked", len(acked))
	}

	// Invalid submissions, each naming its field.
	invalid := map[string]string{ // Nats-Msg-Id -> field
		"bad-qty":      "items[0].qty",
		"bad-user":     "user_id",
		"bad-currency": "currency",
		"bad-field":    "coupon",
		"bad-json":     "body",
		"bad-no-id":    "order_id",
		"bad-id":       "order_id",
		"bad-total":    "total_cents",
	}
	bad := map[string]string{
		"bad-qty":      `{"order_id":"x1","user_id":1,"items":[{"sku":"A","qty":0,"price_cents":1}],"currency":"USD"}`,
		"bad-user":     `{"order_id":"x2","user_id":-4,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"USD"}`,
		"bad-currency": `{"order_id":"x3","user_id":1,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"usd"}`,
		"bad-field":    `{"order_id":"x4","user_id":1,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"USD","coupon":"Z"}`,
		"bad-json":     `{"order_id":"x5",`,
		"bad-no-id":    `{"user_id":1,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"USD"}`,
		"bad-id":       `{"order_id":"has space","user_id":1,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"USD"}`,
		"bad-total":    `{"order_id":"x6","user_id":1,"items":[{"sku":"A","qty":1,"price_cents":1}],"currency":"USD","total_cents":2}`,
	}
	for _, id := range slices.Sorted(maps.Keys(bad)) {
		if _, err := env.JS.PublishMsg(context.Background(), submitMsg(id, []byte(bad[id]))); err != nil {
			t.Fatal(err)
		}
	}

	waitDrained(t, env.JS, 20*time.Second)
	t.Logf("2,008 messages published and persisted in %s", time.Since(start).Round(time.Millisecond))

	// Every acked order exactly once, per user.
	want := map[int64][]string{}
	seen := map[string]bool{}
	for _, id := range acked {
		if !seen[id] {
			seen[id] = true
			var n int
			fmt.Sscanf(id, "d-%d", &n)
			want[user(n)] = append(want[user(n)], id)
		}
	}
	if len(seen) != unique {
		t.Fatalf("%d distinct acked orders, want %d", len(seen), unique)
	}
	st := testenv.Store[store.Orders](t, env)
	total := assertStoredExactly(t, st, want)
	if total != unique {
		t.Errorf("%d orders stored, want %d", total, unique)
	}
	// created_at is the order's own when it has one.
	o, err := st.GetOrder(context.Background(), "d-0002")
	if err != nil || !o.CreatedAt.Equal(time.Date(2025, 6, 1, 0, 0, 2, 2000, time.UTC)) {
		t.Errorf("d-0002: %v %+v", err, o)
	}

	// Dead letters name the field.
	cons, err := env.JS.OrderedConsumer(context.Background(), "DLQ", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"dlq.order-persist"}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(len(bad), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// Keyed by payload: the runtime replaces Nats-Msg-Id on a dead letter
	// with its own de-duplication id (dlq:<stream>:<seq>).
	byPayload := map[string]string{}
	for id, data := range bad {
		byPayload[data] = id
	}
	got := map[string]string{}
	for m := range batch.Messages() {
		id, ok := byPayload[string(m.Data())]
		if !ok {
			t.Errorf("unexpected dead letter %q", m.Data())
			continue
		}
		got[id] = m.Headers().Get(wire.HeaderDLQError)
		if m.Headers().Get(wire.HeaderDLQSubject) != "orders.submit" || m.Headers().Get(wire.HeaderDLQDeliveries) != "1" {
			t.Errorf("dead letter %s headers %v", id, m.Headers())
		}
	}
	if err := batch.Error(); err != nil {
		t.Error(err)
	}
	for id, field := range invalid {
		if reason, ok := got[id]; !ok || !strings.HasPrefix(reason, field+": ") {
			t.Errorf("dead letter %s: reason %q (present %v), want it to name %s", id, reason, ok, field)
		}
	}
	for _, id := range []string{"x1", "x2", "x3", "x4", "x6"} {
		if _, err := st.GetOrder(context.Background(), id); err == nil {
			t.Errorf("invalid order %s was stored", id)
		}
	}
}
