package gateway_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/gateway"
	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/wire"
)

// TestLeaderCallStatus: the read GET /calls/{id} falls back to when a KV
// read (which any replica may serve) finds nothing: the stream leader's
// last message for the key, nothing for a missing or deleted one.
func TestLeaderCallStatus(t *testing.T) {
	nc, js := testenv.ConnectJetStream(t, testenv.NATSServer(t).ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: wire.BucketCalls})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "c1", []byte(`{"status":"queued"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "c1", []byte(`{"status":"succeeded"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := gateway.LeaderCallStatus(ctx, nc, "c1")
	if err != nil || string(got) != `{"status":"succeeded"}` {
		t.Errorf("c1 = %q, %v; want the last status", got, err)
	}
	if _, err := gateway.LeaderCallStatus(ctx, nc, "missing"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("missing = %v, want ErrKeyNotFound", err)
	}
	if _, err := kv.Put(ctx, "c2", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.LeaderCallStatus(ctx, nc, "c2"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("deleted = %v, want ErrKeyNotFound", err)
	}
}
