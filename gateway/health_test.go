package gateway

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
)

func TestNeededAssets(t *testing.T) {
	platform := []string{"bucket surge_functions", "bucket surge_calls", "stream CALLS", "stream DLQ"}
	tests := []struct {
		name string
		fns  []manifests.Function
		want []string // after the platform's own
	}{
		{"none", nil, nil},
		{"request trigger", []manifests.Function{{Spec: manifests.Spec{Handler: "echo", Trigger: manifests.Trigger{Subject: "fn.echo"}}}}, nil},
		{"stream trigger, publishes and buckets", []manifests.Function{{Spec: manifests.Spec{Handler: "orders",
			Trigger:   manifests.Trigger{Stream: "ORDERS", Filter: "orders.submit"},
			Publishes: []manifests.Stream{{Stream: "EVENTS"}}, KV: []manifests.KVBucket{{Bucket: "idem"}}}}},
			[]string{"stream ORDERS", "stream EVENTS", "bucket idem"}},
		{"shared once", []manifests.Function{
			{Spec: manifests.Spec{Handler: "a", Trigger: manifests.Trigger{Stream: "ORDERS"}, KV: []manifests.KVBucket{{Bucket: "idem"}}}},
			{Spec: manifests.Spec{Handler: "b", Publishes: []manifests.Stream{{Stream: "ORDERS"}, {Stream: "DLQ"}}, KV: []manifests.KVBucket{{Bucket: "idem"}}}},
		}, []string{"stream ORDERS", "bucket idem"}},
		{"an external function's buckets are its own", []manifests.Function{{Spec: manifests.Spec{Handler: manifests.HandlerExternal,
			Trigger: manifests.Trigger{Stream: "JOBS"}, KV: []manifests.KVBucket{{Bucket: "theirs"}}}}}, []string{"stream JOBS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, a := range neededAssets(tt.fns) {
				got = append(got, a.String())
			}
			if want := append(slices.Clone(platform), tt.want...); !slices.Equal(got, want) {
				t.Errorf("neededAssets = %v, want %v", got, want)
			}
		})
	}
	if s := (asset{bucket: true, name: "idem"}).stream(); s != "KV_idem" {
		t.Errorf("a bucket's stream = %q", s)
	}
}

// TestAssetsCheck: the streams check names every stream that is gone, has
// no leader or does not answer, and asks JetStream at most once per
// assetsTTL however often /readyz is polled.
func TestAssetsCheck(t *testing.T) {
	now := time.Unix(1000, 0)
	var calls atomic.Int64
	state := map[string]string{} // stream -> "missing", "leaderless", "slow"; absent: healthy
	c := &assetsCheck{
		assets: func() []asset {
			return []asset{{name: "ORDERS"}, {bucket: true, name: "idem"}, {name: "EVENTS"}, {name: "CALLS"}}
		},
		now: func() time.Time { return now },
		info: func(ctx context.Context, name string) (*jetstream.StreamInfo, error) {
			calls.Add(1)
			switch state[name] {
			case "missing":
				return nil, jetstream.ErrStreamNotFound
			case "leaderless":
				return &jetstream.StreamInfo{Cluster: &jetstream.ClusterInfo{Name: "c1"}}, nil
			case "slow":
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return &jetstream.StreamInfo{Cluster: &jetstream.ClusterInfo{Name: "c1", Leader: "n1"}}, nil
		},
	}
	ctx := context.Background()
	if err := c.check(ctx); err != nil || calls.Load() != 4 {
		t.Fatalf("all healthy: %v after %d probes, want nil after 4", err, calls.Load())
	}
	state["ORDERS"], state["KV_idem"], state["EVENTS"] = "leaderless", "missing", "slow"
	if err := c.check(ctx); err != nil || calls.Load() != 4 {
		t.Errorf("within the TTL: %v after %d probes, want the cached nil and no probe", err, calls.Load())
	}
	now = now.Add(assetsTTL)
	err := c.check(ctx)
	want := "stream ORDERS: no leader; bucket idem: not found; stream EVENTS: no answer within " + probeTimeout.String()
	if err == nil || err.Error() != want {
		t.Errorf("check = %v, want %q", err, want)
	}
	if calls.Load() != 8 {
		t.Errorf("%d probes, want 8", calls.Load())
	}
	if err2 := c.check(ctx); !errors.Is(err2, err) {
		t.Errorf("within the TTL again: %v, want the cached error", err2)
	}
	// Back on its own: the next probe after the TTL sees them healthy.
	clear(state)
	now = now.Add(assetsTTL)
	if err := c.check(ctx); err != nil {
		t.Errorf("recovered: %v", err)
	}
	// A single server reports no cluster: that is a leader of its own.
	c.info = func(context.Context, string) (*jetstream.StreamInfo, error) { return &jetstream.StreamInfo{}, nil }
	now = now.Add(assetsTTL)
	if err := c.check(ctx); err != nil {
		t.Errorf("single server (no cluster info) reported as %v", err)
	}
}
