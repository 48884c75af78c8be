package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
	"github.com/surgefn/surge/runtime/wire"
)

func evJSON(user int, typ, item string) string {
	return fmt.Sprintf(`{"user_id":%d,"type":%q,"item_id":%q,"ts":"2025-03-01T10:00:00Z"}`, user, typ, item)
}

func msg(seq uint64, data string) *runtime.Msg {
	return &runtime.Msg{Subject: SubjectTrack, Data: []byte(data), Stream: "EVENTS", Seq: seq, Delivered: 1}
}

func kvCounts(t *testing.T, a *Aggregate, item string) (store.Counts, bool) {
	t.Helper()
	e, err := a.kv.Get(context.Background(), StatsKey(item))
	if err != nil {
		return store.Counts{}, false
	}
	var c store.Counts
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		t.Fatal(err)
	}
	return c, true
}

func TestAggregateCountsOncePerSeq(t *testing.T) {
	_, js := testenv.JetStream(t)
	st := newMemStore()
	var a Aggregate
	if err := a.setup(newBucket(t, js), st, discard()); err != nil {
		t.Fatal(err)
	}
	batch := []*runtime.Msg{
		msg(1, evJSON(1, "view", "A1")),
		msg(2, "["+evJSON(1, "view", "A1")+","+evJSON(2, "click", "A1")+","+evJSON(2, "buy", "a.b")+"]"),
		msg(3, `{"user_id":1,"type":"nap","item_id":"A1","ts":"2025-03-01T10:00:00Z"}`),
		msg(4, `garbage`),
	}
	if err := a.HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if batch[0].Settled() || batch[1].Settled() {
		t.Error("valid messages settled (they must be acked)")
	}
	if !batch[2].Settled() || !batch[3].Settled() {
		t.Error("invalid messages not rejected")
	}
	if st.calls != 1 {
		t.Errorf("ApplyEvents called %d times, want once per batch", st.calls)
	}
	want := map[string]store.Counts{"A1": {View: 2, Click: 1}, "a.b": {Buy: 1}}
	for item, w := range want {
		if c, ok := kvCounts(t, &a, item); !ok || c != w {
			t.Errorf("KV %s = %+v (found %v), want %+v", item, c, ok, w)
		}
	}
	// Redelivered (same seqs) together with a new one: only the new counts.
	redo := []*runtime.Msg{msg(1, evJSON(1, "view", "A1")), msg(2, "["+evJSON(1, "view", "A1")+"]"), msg(5, evJSON(3, "cart", "A1"))}
	redo[0].Delivered, redo[1].Delivered = 2, 2
	if err := a.HandleBatch(context.Background(), redo); err != nil {
		t.Fatal(err)
	}
	if c, _ := kvCounts(t, &a, "A1"); c != (store.Counts{View: 2, Click: 1, Cart: 1}) {
		t.Errorf("after redelivery KV A1 = %+v", c)
	}
}

func TestAggregateStoreFailureFailsBatch(t *testing.T) {
	st := newMemStore()
	st.applyErr = fmt.Errorf("disk on fire")
	var a Aggregate
	if err := a.setup(nil, st, discard()); err != nil {
		t.Fatal(err)
	}
	bad := msg(2, "nope")
	if err := a.HandleBatch(context.Background(), []*runtime.Msg{msg(1, evJSON(1, "view", "A")), bad}); err == nil {
		t.Fatal("store failure did not fail the batch")
	}
	if !bad.Settled() {
		t.Error("the invalid message must still be rejected")
	}
}

func TestAggregateMirrorNeverGoesBackwards(t *testing.T) {
	_, js := testenv.JetStream(t)
	st := newMemStore()
	var a Aggregate
	if err := a.setup(newBucket(t, js), st, discard()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// KV already holds newer totals than the store (a concurrent batch
	// wrote them): an older total must not overwrite them.
	newer, _ := json.Marshal(store.Counts{View: 5})
	if _, err := a.kv.Put(ctx, StatsKey("A"), newer); err != nil {
		t.Fatal(err)
	}
	st.counts["A"] = store.Counts{View: 3}
	if err := a.mirrorItem(ctx, "A"); err != nil {
		t.Fatal(err)
	}
	if c, _ := kvCounts(t, &a, "A"); c.View != 5 {
		t.Errorf("KV went backwards to %+v", c)
	}
	// Many concurrent mirrors of growing totals end at the highest.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.ApplyEvents(ctx, []store.EventBatch{{Seq: uint64(100 + i), Items: map[string]store.Counts{"A": {View: 1}}}}); err != nil {
				t.Error(err)
			}
			if err := a.mirrorItem(ctx, "A"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if c, _ := kvCounts(t, &a, "A"); c.View != 23 {
		t.Errorf("KV A = %+v, want view 23", c)
	}
}

func TestIngestAndStats(t *testing.T) {
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	testenv.Streams(t, js, "events.yaml", "events-ingest")
	in := &Ingest{js: js}
	body := "[" + evJSON(1, "view", "A1") + "," + evJSON(1, "buy", "A1") + "]"
	req := runtime.NewRequest("fn.events.ingest", []byte(body), nil)
	req.Header.Set(runtime.HeaderIdempotencyKey, "batch-1")
	if err := in.Handle(ctx, req); err != nil {
		t.Fatal(err)
	}
	status, resp, _ := req.Response()
	if status != http.StatusAccepted || string(resp) != `{"accepted":2}` {
		t.Fatalf("ingest = %d %s", status, resp)
	}
	// One message holding the validated array; a retry with the same key is
	// de-duplicated by the stream.
	again := runtime.NewRequest("fn.events.ingest", []byte(body), nil)
	again.Header.Set(runtime.HeaderIdempotencyKey, "batch-1")
	if err := in.Handle(ctx, again); err != nil {
		t.Fatal(err)
	}
	name, _ := js.StreamNameBySubject(ctx, SubjectTrack)
	s, _ := js.Stream(ctx, name)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := Parse(m.Data); err != nil || len(evs) != 2 || !strings.HasPrefix(string(m.Data), "[") {
		t.Errorf("published %s (%v)", m.Data, err)
	}
	// A bad body is a 400 and publishes nothing.
	bad := runtime.NewRequest("fn.events.ingest", []byte(`[]`), nil)
	if e := runtime.AsError(in.Handle(ctx, bad)); e == nil || e.Status != 400 {
		t.Errorf("empty array = %v", e)
	}

	// Stats: the KV mirror first, the store on a miss.
	st := newMemStore()
	st.counts["B2"] = store.Counts{Click: 7}
	kv := newBucket(t, js)
	mirrored, _ := json.Marshal(store.Counts{View: 1, Buy: 1})
	if _, err := kv.Put(ctx, StatsKey("A1"), mirrored); err != nil {
		t.Fatal(err)
	}
	clock := testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	stats := &Stats{kv: kv, store: st, log: discard(), l1: runtime.NewCache[string, store.Counts](statsL1TTL, statsL1Size, clock)}
	for _, tt := range []struct {
		item       string
		wantStatus int
		want       string
	}{
		{"A1", 200, `{"item_id":"A1","view":1,"click":0,"cart":0,"buy":1}`},
		{"B2", 200, `{"item_id":"B2","view":0,"click":7,"cart":0,"buy":0}`},
		{"never-seen", 200, `{"item_id":"never-seen","view":0,"click":0,"cart":0,"buy":0}`},
		{strings.Repeat("x", 65), 400, ""},
		{"", 400, ""},
	} {
		req := runtime.NewRequest("fn.items.stats", nil, nil)
		req.Header.Set(wire.HeaderParamPrefix+"item_id", tt.item)
		err := stats.Handle(ctx, req)
		if tt.wantStatus != 200 {
			if e := runtime.AsError(err); e == nil || e.Status != tt.wantStatus || !strings.HasPrefix(e.Msg, "item_id: ") {
				t.Errorf("stats %q = %v, want %d naming item_id", tt.item, err, tt.wantStatus)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, body, _ := req.Response(); string(body) != tt.want {
			t.Errorf("stats %q = %s, want %s", tt.item, body, tt.want)
		}
	}
	// L1: a newer KV total shows up once the cached one is past its TTL.
	newer, _ := json.Marshal(store.Counts{View: 5, Buy: 1})
	if _, err := kv.Put(ctx, StatsKey("A1"), newer); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		req := runtime.NewRequest("fn.items.stats", nil, nil)
		req.Header.Set(wire.HeaderParamPrefix+"item_id", "A1")
		if err := stats.Handle(ctx, req); err != nil {
			t.Fatal(err)
		}
		_, body, _ := req.Response()
		return string(body)
	}
	if got := read(); got != `{"item_id":"A1","view":1,"click":0,"cart":0,"buy":1}` {
		t.Errorf("within the L1 TTL = %s, want the cached total", got)
	}
	clock.Add(statsL1TTL)
	if got := read(); got != `{"item_id":"A1","view":5,"click":0,"cart":0,"buy":1}` {
		t.Errorf("after the L1 TTL = %s, want the newer KV total", got)
	}
}

// TestSeqKeyEpoch: the same sequence of two instances of the stream (one
// deleted and created again) gets two keys, so the second is not skipped as
// applied; within one instance the key is stable.
func TestSeqKeyEpoch(t *testing.T) {
	first := &Aggregate{epoch: 1_700_000_000 & (1<<(64-seqBits) - 1)}
	again := &Aggregate{epoch: 1_700_000_123 & (1<<(64-seqBits) - 1)}
	if first.seqKey(7) == again.seqKey(7) {
		t.Error("a recreated stream reuses the applied-batch keys")
	}
	if got := first.seqKey(7); got != 1_700_000_000&(1<<(64-seqBits)-1)<<seqBits|7 {
		t.Errorf("seqKey(7) = %#x: epoch not above bit %d", got, seqBits)
	}
	if first.seqKey(7) == first.seqKey(8) {
		t.Error("two sequences of one stream share a key")
	}
	if (&Aggregate{}).seqKey(42) != 42 {
		t.Error("epoch 0 must keep the sequence as is")
	}
}
