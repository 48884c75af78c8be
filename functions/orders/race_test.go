package orders

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// memStore is a store.Orders in memory; hook, when set, runs inside
// ListOrders after the read.
type memStore struct {
	mu     sync.Mutex
	orders map[int64][]store.Order // newest first
	hook   func()
	lists  map[int64]int // ListOrders calls per user
}

var _ store.Orders = (*memStore)(nil)

// add stores o as the user's newest order.
func (s *memStore) add(o store.Order) {
	s.mu.Lock()
	s.orders[o.UserID] = append([]store.Order{o}, s.orders[o.UserID]...)
	s.mu.Unlock()
}

// PutOrders adds the orders whose id is new, each as its user's newest.
func (s *memStore) PutOrders(ctx context.Context, orders []store.Order) (int, error) {
	n := 0
	for _, o := range orders {
		if _, err := s.GetOrder(ctx, o.OrderID); err == nil {
			continue
		}
		s.add(o)
		n++
	}
	return n, nil
}

func (s *memStore) GetOrder(_ context.Context, id string) (store.Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, os := range s.orders {
		for _, o := range os {
			if o.OrderID == id {
				return o, nil
			}
		}
	}
	return store.Order{}, store.ErrNotFound
}

// ListOrders lists as every store does: newest created_at first, then
// the greater order_id.
func (s *memStore) ListOrders(_ context.Context, user int64, offset, limit int) ([]store.Order, error) {
	s.mu.Lock()
	all := slices.Clone(s.orders[user])
	slices.SortStableFunc(all, func(a, b store.Order) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.OrderID, a.OrderID)
	})
	out := slices.Clone(all[min(offset, len(all)):min(offset+limit, len(all))])
	if s.lists != nil {
		s.lists[user]++
	}
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return out, nil
}

// ListOrdersAfter lists the orders after afterID in ListOrders' order.
func (s *memStore) ListOrdersAfter(ctx context.Context, user int64, afterID string, limit int) ([]store.Order, error) {
	all, err := s.ListOrders(ctx, user, 0, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(all, func(o store.Order) bool { return o.OrderID == afterID })
	if i < 0 {
		return nil, store.ErrNotFound
	}
	return all[i+1 : min(i+1+limit, len(all))], nil
}

func newBucket(t *testing.T, name string) jetstream.KeyValue {
	t.Helper()
	env := testenv.Start(t, func(o *platform.Options) { o.Runtime = false; o.HTTPAddr = "" })
	kv, err := env.JS.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: name})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// cachedPage is the page (JSON array) of an ORDERS_HOT value.
func cachedPage(t *testing.T, v []byte) []byte {
	t.Helper()
	page, ok := decodePage(v)
	if !ok {
		t.Fatalf("ORDERS_HOT value %q is not a page", v)
	}
	return page
}

func pageIDs(t *testing.T, page []byte) []string {
	t.Helper()
	var orders []store.Order
	if err := json.Unmarshal(page, &orders); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range orders {
		out = append(out, o.OrderID)
	}
	return out
}

// TestHotCacheStaleWriterLoses: writer A reads the store, then writer B
// stores a newer order and refreshes; A's stale page must not win.
func TestHotCacheStaleWriterLoses(t *testing.T) {
	kv := newBucket(t, "HOT_RACE")
	st := &memStore{orders: map[int64][]store.Order{}}
	h := &hotCache{kv: kv, store: st, workers: 4}
	st.add(store.Order{OrderID: "x", UserID: 1})

	aListed, bDone := make(chan struct{}), make(chan struct{})
	var once sync.Once
	st.hook = func() { // only A's first list blocks, after reading [x]
		once.Do(func() { close(aListed); <-bDone })
	}
	errA := make(chan error, 1)
	go func() { errA <- h.refreshUser(context.Background(), 1) }()
	<-aListed
	st.mu.Lock()
	st.hook = nil
	st.mu.Unlock()
	st.add(store.Order{OrderID: "y", UserID: 1})
	if err := h.refreshUser(context.Background(), 1); err != nil { // B
		t.Fatal(err)
	}
	close(bDone)
	if err := <-errA; err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), hotKey(1))
	if err != nil {
		t.Fatal(err)
	}
	if got := pageIDs(t, cachedPage(t, e.Value())); !slices.Equal(got, []string{"y", "x"}) {
		t.Errorf("cached page = %v, want [y x]: a stale writer overwrote a newer page", got)
	}

	// A reader filling a miss never overwrites a writer's page.
	st.add(store.Order{OrderID: "z", UserID: 1})
	page, err := h.get(context.Background(), 1)
	if err != nil || !slices.Equal(pageIDs(t, page), []string{"y", "x"}) {
		t.Errorf("get = %v %v, want the cached [y x]", pageIDs(t, page), err)
	}
	page, err = h.get(context.Background(), 2) // miss: from the store, then cached
	if err != nil || string(page) != "[]" {
		t.Errorf("get of a user without orders = %s %v", page, err)
	}
	if e, err := kv.Get(context.Background(), hotKey(2)); err != nil || string(cachedPage(t, e.Value())) != "[]" {
		t.Errorf("miss not filled: %v", err)
	}
	// Refreshing many users at once.
	for u := int64(10); u < 60; u++ {
		st.add(store.Order{OrderID: "o" + strconv.Itoa(int(u)), UserID: u})
	}
	users := []int64{}
	for u := int64(10); u < 60; u++ {
		users = append(users, u)
	}
	if failed, err := h.refresh(context.Background(), users); failed != 0 || err != nil {
		t.Fatalf("refresh: %d failed: %v", failed, err)
	}
	for _, u := range users {
		if e, err := kv.Get(context.Background(), hotKey(u)); err != nil || pageIDs(t, cachedPage(t, e.Value()))[0] != "o"+strconv.Itoa(int(u)) {
			t.Errorf("user %d not refreshed: %v", u, err)
		}
	}
}

// newTestAccept wires an Accept to a JetStream without the ORDERS stream.
func newTestAccept(t *testing.T) (*Accept, jetstream.JetStream) {
	t.Helper()
	env := testenv.Start(t, func(o *platform.Options) { o.Runtime = false; o.HTTPAddr = "" })
	kv, err := env.JS.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: BucketIdem})
	if err != nil {
		t.Fatal(err)
	}
	return &Accept{js: env.JS, idem: kv, clock: runtime.SystemClock{}, log: slog.New(slog.DiscardHandler),
		ids: newIDGen(), lease: time.Hour}, env.JS
}

func call(t *testing.T, a *Accept, body, key string) (int, []byte, error) {
	t.Helper()
	req := runtime.NewRequest("fn.orders.accept", []byte(body), nats.Header{runtime.HeaderIdempotencyKey: {key}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := a.Handle(ctx, req)
	status, data, _ := req.Response()
	return status, data, err
}

func record(t *testing.T, a *Accept, key string) idemRecord {
	t.Helper()
	e, err := a.idem.Get(context.Background(), idemKey(key))
	if err != nil {
		t.Fatal(err)
	}
	var rec idemRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestIdempotencyTakeover: a call that could not publish leaves its
// order_id behind, and the retry publishes that same order_id.
func TestIdempotencyTakeover(t *testing.T) {
	a, js := newTestAccept(t)
	_, _, err := call(t, a, validBody, "k1")
	if e := runtime.AsError(err); e == nil || e.Status != http.StatusServiceUnavailable {
		t.Fatalf("publish without a stream: %v, want 503", err)
	}
	failed := record(t, a, "k1")
	if failed.State != idemFailed || failed.OrderID == "" {
		t.Fatalf("record after the failure = %+v", failed)
	}
	testenv.Streams(t, js, "orders.yaml", "order-accept")
	status, data, err := call(t, a, validBody, "k1")
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("retry: %d %v", status, err)
	}
	if want := string(acceptedResponse(failed.OrderID, 3998)); string(data) != want {
		t.Errorf("retry answered %s, want the failed call's order id: %s", data, want)
	}
	if rec := record(t, a, "k1"); rec.State != idemDone || string(rec.Response) != string(data) {
		t.Errorf("record = %+v", rec)
	}

	// A pending record whose owner died (lease over) is taken over too.
	dead := idemRecord{BodyHash: failed.BodyHash, State: idemPending, OrderID: "01DEADOWNER0000000000000000"[:26], CreatedAt: time.Now().UnixMicro(), Total: 3998}
	if _, err := a.idem.Create(context.Background(), idemKey("k2"), mustJSON(dead)); err != nil {
		t.Fatal(err)
	}
	a.lease = 50 * time.Millisecond
	time.Sleep(60 * time.Millisecond)
	status, data, err = call(t, a, validBody, "k2")
	if err != nil || status != http.StatusAccepted || string(data) != string(acceptedResponse(dead.OrderID, 3998)) {
		t.Errorf("takeover of a dead owner: %d %s %v", status, data, err)
	}
	// Within the lease, a live owner is waited for, up to the deadline.
	a.lease = time.Hour
	live := dead
	live.OrderID = "01LIVEOWNER0000000000000000"[:26]
	if _, err := a.idem.Create(context.Background(), idemKey("k3"), mustJSON(live)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		live.State, live.Response = idemDone, acceptedResponse(live.OrderID, 3998)
		_, _ = a.idem.Put(context.Background(), idemKey("k3"), mustJSON(live))
	}()
	status, data, err = call(t, a, validBody, "k3")
	if err != nil || status != http.StatusAccepted || string(data) != string(live.Response) {
		t.Errorf("waiting for a live owner: %d %s %v", status, data, err)
	}
	// An owner that never finishes: 409 with Retry-After before the deadline.
	if _, err := a.idem.Create(context.Background(), idemKey("k4"), mustJSON(dead)); err != nil {
		t.Fatal(err)
	}
	req := runtime.NewRequest("fn.orders.accept", []byte(validBody), nats.Header{runtime.HeaderIdempotencyKey: {"k4"}})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = a.Handle(ctx, req)
	_, _, hdr := req.Response()
	if e := runtime.AsError(err); e == nil || e.Status != http.StatusConflict || hdr.Get(runtime.HeaderRetryAfter) == "" || ctx.Err() != nil {
		t.Errorf("stuck owner: %v (deadline passed: %v)", err, ctx.Err())
	}
}

// TestRefreshRoundsInterval: rounds start at least the interval apart, and
// the batches that ask meanwhile share the next round, so a user in
// several of them has their page built once.
func TestRefreshRoundsInterval(t *testing.T) {
	kv := newBucket(t, "HOT_ROUNDS")
	st := &memStore{orders: map[int64][]store.Order{}, lists: map[int64]int{}}
	h := &hotCache{kv: kv, store: st, workers: 4}
	const interval = 300 * time.Millisecond
	h.rounds.interval = interval
	ctx := context.Background()
	st.add(store.Order{OrderID: "a", UserID: 1})
	first := time.Now()
	if failed, err := h.refreshGrouped(ctx, []int64{1}, nil); failed != 0 || err != nil {
		t.Fatalf("first round: %d failed: %v", failed, err)
	}
	st.add(store.Order{OrderID: "b", UserID: 2})
	st.add(store.Order{OrderID: "c", UserID: 3})
	var wg sync.WaitGroup
	for _, users := range [][]int64{{2}, {2, 3}, {3, 2}} {
		wg.Go(func() {
			if failed, err := h.refreshGrouped(ctx, users, nil); failed != 0 || err != nil {
				t.Errorf("refresh %v: %d failed: %v", users, failed, err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(first); took < interval {
		t.Errorf("second round done %v after the first started; want at least the interval %v", took, interval)
	}
	st.mu.Lock()
	lists := maps.Clone(st.lists)
	st.mu.Unlock()
	if lists[1] != 1 || lists[2] != 1 || lists[3] != 1 {
		t.Errorf("store reads per user = %v, want one each: the three batches did not share a round", lists)
	}
	for u, want := range map[int64]string{1: "a", 2: "b", 3: "c"} {
		e, err := kv.Get(ctx, hotKey(u))
		if err != nil || !slices.Equal(pageIDs(t, cachedPage(t, e.Value())), []string{want}) {
			t.Errorf("user %d page: %v", u, err)
		}
	}
}
