package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
)

// slowPublisher records what the committer publishes; each publish takes
// delay, and fail makes the publishes whose batch holds that order fail.
type slowPublisher struct {
	delay time.Duration
	fail  string

	mu       sync.Mutex
	msgs     []*nats.Msg
	inflight int
	maxIn    int
}

func (p *slowPublisher) PublishMsg(ctx context.Context, msg *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.mu.Lock()
	p.inflight++
	p.maxIn = max(p.maxIn, p.inflight)
	p.mu.Unlock()
	defer func() { p.mu.Lock(); p.inflight--; p.mu.Unlock() }()
	select {
	case <-time.After(p.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for _, id := range orderIDsOf(msg) {
		if id == p.fail {
			return nil, &jetstream.APIError{Code: 400, ErrorCode: 10999, Description: "refused"}
		}
	}
	p.mu.Lock()
	p.msgs = append(p.msgs, msg)
	p.mu.Unlock()
	return &jetstream.PubAck{Stream: "ORDERS"}, nil
}

// orderIDsOf lists the order ids of an orders.submit message, one object or an array.
func orderIDsOf(msg *nats.Msg) []string {
	type one struct {
		OrderID string `json:"order_id"`
	}
	var many []one
	if msg.Data[0] == '[' {
		if err := json.Unmarshal(msg.Data, &many); err != nil {
			panic(err)
		}
	} else {
		var o one
		if err := json.Unmarshal(msg.Data, &o); err != nil {
			panic(err)
		}
		many = append(many, o)
	}
	ids := make([]string, len(many))
	for i, o := range many {
		ids[i] = o.OrderID
	}
	return ids
}

func TestCommitterGroupsConcurrentOrders(t *testing.T) {
	tests := []struct {
		name        string
		cfg         GroupCommit
		callers     int
		delay       time.Duration
		wantBatches bool // several orders per message
	}{
		{name: "one caller at a time goes alone", cfg: GroupCommit{}, callers: 1, delay: time.Millisecond},
		{name: "concurrent callers are grouped", cfg: GroupCommit{MaxBatch: 50, Inflight: 2}, callers: 400, delay: 5 * time.Millisecond, wantBatches: true},
		{name: "linger", cfg: GroupCommit{MaxBatch: 1000, Wait: manifests.Duration(2 * time.Millisecond), Inflight: 1}, callers: 300, delay: time.Millisecond, wantBatches: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub := &slowPublisher{delay: tc.delay}
			c := newCommitter(pub, tc.cfg, 1<<20)
			defer c.stop()
			rounds := 1
			if tc.callers == 1 {
				rounds = 20 // sequential calls: each must go alone
			}
			var wg sync.WaitGroup
			errs := make(chan error, tc.callers*rounds)
			for r := range rounds {
				for i := range tc.callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						defer cancel()
						id := fmt.Sprintf("o-%d-%d", r, i)
						errs <- c.commit(ctx, id, fmt.Appendf(nil, `{"order_id":%q}`, id))
					}()
				}
				if tc.callers == 1 {
					wg.Wait()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("commit: %v", err)
				}
			}
			seen := map[string]int{}
			maxBatch := 0
			for _, m := range pub.msgs {
				ids := orderIDsOf(m)
				maxBatch = max(maxBatch, len(ids))
				if want := c.maxBatch; len(ids) > want {
					t.Errorf("a message holds %d orders, more than maxBatch %d", len(ids), want)
				}
				msgID := m.Header.Get(runtime.HeaderMsgID)
				if len(ids) == 1 && msgID != ids[0] {
					t.Errorf("a single order's Nats-Msg-Id is %q, want its order_id %s", msgID, ids[0])
				}
				for _, id := range ids {
					seen[id]++
				}
			}
			if len(seen) != tc.callers*rounds {
				t.Errorf("%d distinct orders published, want %d", len(seen), tc.callers*rounds)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("order %s published %d times", id, n)
				}
			}
			if grouped := maxBatch > 1; grouped != tc.wantBatches {
				t.Errorf("largest message holds %d orders: grouped = %v, want %v", maxBatch, grouped, tc.wantBatches)
			}
			if inflight := max(1, tc.cfg.Inflight); tc.cfg.Inflight > 0 && pub.maxIn > inflight {
				t.Errorf("%d publishes at once, want at most %d", pub.maxIn, inflight)
			}
		})
	}
}

// TestCommitterErrorsAndDeadlines: a caller whose context ended while its
// order waited is not published; a failed publish fails every caller of
// its batch and no other.
func TestCommitterErrorsAndDeadlines(t *testing.T) {
	pub := &slowPublisher{delay: 30 * time.Millisecond, fail: "poison"}
	c := newCommitter(pub, GroupCommit{MaxBatch: 10, Inflight: 1}, 1<<20)
	defer c.stop()
	ctx := context.Background()
	commit := func(ctx context.Context, id string) <-chan error {
		ch := make(chan error, 1)
		go func() { ch <- c.commit(ctx, id, fmt.Appendf(nil, `{"order_id":%q}`, id)) }()
		return ch
	}

	// publishing waits until the only slot is taken.
	publishing := func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			pub.mu.Lock()
			n := pub.inflight
			pub.mu.Unlock()
			if n == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("no publish in flight")
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	// "busy" takes the only slot; "gone" and "a" wait for it together,
	// and gone's caller leaves meanwhile.
	busy := commit(ctx, "busy")
	publishing()
	goneCtx, cancel := context.WithCancel(ctx)
	gone := commit(goneCtx, "gone")
	a := commit(ctx, "a")
	time.Sleep(5 * time.Millisecond)
	cancel()
	for name, ch := range map[string]<-chan error{"busy": busy, "a": a} {
		if err := <-ch; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Errorf("a caller that gave up got %v, want context.Canceled", err)
	}

	// "busy2" takes the slot; x, poison and y share the next message,
	// which is refused: all three fail, busy2 and a later order do not.
	busy2 := commit(ctx, "busy2")
	publishing()
	batch := []<-chan error{commit(ctx, "x"), commit(ctx, "poison"), commit(ctx, "y")}
	if err := <-busy2; err != nil {
		t.Fatalf("busy2: %v", err)
	}
	for i, ch := range batch {
		if err := <-ch; err == nil {
			t.Errorf("caller %d, batched with a refused order, got no error", i)
		}
	}
	if err := <-commit(ctx, "later"); err != nil {
		t.Errorf("an order after a failed batch: %v", err)
	}
	published := map[string]bool{}
	for _, m := range pub.msgs {
		for _, id := range orderIDsOf(m) {
			published[id] = true
		}
	}
	for id, want := range map[string]bool{"busy": true, "a": true, "gone": false, "busy2": true, "x": false, "later": true} {
		if published[id] != want {
			t.Errorf("order %s published = %v, want %v", id, published[id], want)
		}
	}
}

// TestCommitterBoundsBytes: a batch never takes its body past what the
// server takes (max_payload less the headers' room); an order that does
// not fit starts the next batch, and every order is published once.
func TestCommitterBoundsBytes(t *testing.T) {
	pub := &slowPublisher{delay: 2 * time.Millisecond}
	const maxBytes = 300
	c := newCommitter(pub, GroupCommit{MaxBatch: 1000, Inflight: 1}, payloadHeadroom+maxBytes)
	defer c.stop()
	var wg sync.WaitGroup
	const n = 400
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("order-%03d", i)
			if err := c.commit(context.Background(), id, fmt.Appendf(nil, `{"order_id":%q}`, id)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen, grouped := map[string]bool{}, false
	for _, m := range pub.msgs {
		if len(m.Data) > maxBytes {
			t.Errorf("a message of %d bytes, over %d", len(m.Data), maxBytes)
		}
		ids := orderIDsOf(m)
		grouped = grouped || len(ids) > 1
		for _, id := range ids {
			if seen[id] {
				t.Errorf("order %s published twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != n || !grouped {
		t.Errorf("%d of %d orders published, grouped %v", len(seen), n, grouped)
	}
}

func TestGroupCommitValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		g       GroupCommit
		wantErr string
	}{
		{name: "defaults", g: GroupCommit{}},
		{name: "off", g: GroupCommit{MaxBatch: 1}},
		{name: "batch too big", g: GroupCommit{MaxBatch: 1001}, wantErr: "groupCommit.maxBatch"},
		{name: "negative wait", g: GroupCommit{Wait: -1}, wantErr: "groupCommit.wait"},
		{name: "inflight", g: GroupCommit{Inflight: -2}, wantErr: "groupCommit.inflight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.g.validate()
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("validate() = %v, want an error naming %q", err, tc.wantErr)
			}
		})
	}
}
