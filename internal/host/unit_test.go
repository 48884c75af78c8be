package host

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

func TestBackoffDelay(t *testing.T) {
	l := &streamLoop{backoff: []time.Duration{100 * time.Millisecond, time.Second}}
	for delivered, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: time.Second, 7: time.Second} {
		if got := l.delay(delivered); got != want {
			t.Errorf("delay(%d) = %s, want %s", delivered, got, want)
		}
	}
	l = &streamLoop{}
	for delivered := 1; delivered <= 10; delivered++ {
		base := 500 * time.Millisecond << min(delivered-1, 6)
		got := l.delay(delivered)
		if got < base/2 || got > base {
			t.Errorf("default delay(%d) = %s, want within [%s, %s]", delivered, got, base/2, base)
		}
	}
}

func TestConsumerConfig(t *testing.T) {
	c := consumerConfig("persist", "orders.submit", 5, 1000, 2, 2*time.Second, 10*time.Millisecond)
	if c.MaxDeliver != 6 {
		t.Errorf("MaxDeliver = %d, want maxDeliver+1", c.MaxDeliver)
	}
	if c.AckWait < 4*time.Second || c.MaxAckPending < 8000 {
		t.Errorf("AckWait %s MaxAckPending %d", c.AckWait, c.MaxAckPending)
	}
	c = consumerConfig("x", "", 1, 1, 1, time.Millisecond, 0)
	if c.AckWait != 5*time.Second || c.MaxAckPending != 1000 {
		t.Errorf("floors: AckWait %s MaxAckPending %d", c.AckWait, c.MaxAckPending)
	}
}

// batchOnly is a module with HandleBatch and no Handle.
type batchOnly struct{}

func (batchOnly) HandleBatch(context.Context, []*runtime.Msg) error { return nil }

func init() {
	runtime.Register(runtime.Module{ID: "test.batch-only", New: func() any { return batchOnly{} }})
}

// TestCheckHandlerTrigger: a deploy is refused when the handler cannot
// serve its trigger, as the host would refuse it.
func TestCheckHandlerTrigger(t *testing.T) {
	req := &manifests.Function{Spec: manifests.Spec{Handler: "test.batch-only",
		Trigger: manifests.Trigger{Subject: "fn.x"}}}
	if err := CheckHandler(req); !errors.Is(err, runtime.ErrUnknownHandler) {
		t.Errorf("batch-only handler on a request trigger: %v", err)
	}
	stream := &manifests.Function{Spec: manifests.Spec{Handler: "test.batch-only",
		Trigger: manifests.Trigger{Stream: "S", Filter: "s.x"}}}
	if err := CheckHandler(stream); err != nil {
		t.Errorf("batch-only handler on a stream trigger: %v", err)
	}
}

func TestCallDeadline(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	timeout := 2 * time.Second
	ms := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).UnixMilli(), 10) }
	tests := []struct {
		name   string
		header string
		want   time.Duration // from now
	}{
		{name: "no header: the function's timeout", header: "", want: timeout},
		{name: "the caller's sooner deadline", header: ms(800 * time.Millisecond), want: 800 * time.Millisecond},
		{name: "already past", header: ms(-time.Second), want: -time.Second},
		{name: "later than the timeout: cut to it", header: ms(time.Minute), want: timeout},
		{name: "malformed: the function's timeout", header: "soon", want: timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := nats.Header{}
			if tt.header != "" {
				h.Set(wire.HeaderDeadline, tt.header)
			}
			if got := callDeadline(h, now, timeout).Sub(now); got != tt.want {
				t.Errorf("callDeadline = now%+v, want now%+v", got, tt.want)
			}
		})
	}
}

func TestStoreConflict(t *testing.T) {
	buntA := &wire.StoreIdentity{Backend: "buntdb", ID: "id-a", Where: "/a on m1"}
	buntB := &wire.StoreIdentity{Backend: "buntdb", ID: "id-b", Where: "/b on m2"}
	commerce := &wire.StoreIdentity{Backend: "vitess", ID: "vitess keyspace commerce", Shared: true}
	other := &wire.StoreIdentity{Backend: "vitess", ID: "vitess keyspace other", Shared: true}
	tests := []struct {
		name        string
		mine, their *wire.StoreIdentity
		wantSplit   bool
	}{
		{"the same buntdb directory (a restart)", buntA, buntA, false},
		{"two buntdb directories", buntA, buntB, true},
		{"buntdb next to vitess", buntA, commerce, true},
		{"one keyspace", commerce, commerce, false},
		{"two keyspaces", commerce, other, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storeConflict(tt.mine, &wire.HostStatus{Host: "h1", Store: tt.their, At: time.Now()})
			if got := errors.Is(err, ErrStoreSplit); got != tt.wantSplit {
				t.Errorf("storeConflict = %v, want split %v", err, tt.wantSplit)
			}
		})
	}
}

// TestRunDeadline: a call that found a free slot runs to its own deadline,
// but for at least half the timeout (a gateway clock behind this host's,
// or a call that waited in the subscription's queue).
func TestRunDeadline(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ri := &requestInstance{timeout: 2 * time.Second}
	for _, tt := range []struct {
		name           string
		deadline, want time.Duration // from now
	}{
		{"far", 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"at half", time.Second, time.Second},
		{"near", 300 * time.Millisecond, time.Second},
		{"past", -5 * time.Second, time.Second},
	} {
		if got := ri.runDeadline(now.Add(tt.deadline), now).Sub(now); got != tt.want {
			t.Errorf("%s: runDeadline = now%+v, want now%+v", tt.name, got, tt.want)
		}
	}
}
