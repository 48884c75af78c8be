package platform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/internal/platform"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/wire"
)

// TestReplicasOnASingleServer: --replicas auto is 1 with the embedded
// (single) server, the platform's assets get 1 replica, and a count
// JetStream cannot give is refused before anything starts, naming the flag.
func TestReplicasOnASingleServer(t *testing.T) {
	e := testenv.Start(t, nil)
	if n := e.P.Replicas(); n != 1 {
		t.Fatalf("--replicas auto on the embedded server resolved to %d, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.JS.Stream(ctx, wire.StreamCalls)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().Config.Replicas; n != 1 {
		t.Errorf("%s has %d replicas, want 1", wire.StreamCalls, n)
	}
	for _, bad := range []int{-1, 6} {
		o := testenv.Options(t)
		o.Replicas = bad
		_, err := platform.Start(ctx, o)
		if err == nil || !strings.Contains(err.Error(), "--replicas") {
			t.Errorf("Replicas %d: %v, want an error naming --replicas", bad, err)
		}
	}
	// A count a single server cannot give fails the start at once (it was
	// retried for ever: waiting does not make a server a cluster).
	o := testenv.Options(t)
	o.Replicas = 3
	start := time.Now()
	p, err := platform.Start(ctx, o)
	if err == nil {
		_ = p.Stop(ctx)
		t.Fatal("--replicas 3 on a single server started")
	}
	if !strings.Contains(err.Error(), "needs a NATS cluster") || time.Since(start) > 4*time.Second {
		t.Errorf("--replicas 3 on a single server: %v after %s; want at once an error saying it needs a cluster", err, time.Since(start))
	}
}
