package runtime_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// TestKVLeaderGet: the read KVGet (and GET /calls/{id}) falls back to
// when a KV read, which any replica may serve, finds nothing: the stream
// leader's last message for the key with its revision, nothing for a
// missing, deleted or purged one.
func TestKVLeaderGet(t *testing.T) {
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
	rev, err := kv.Put(ctx, "c1", []byte(`{"status":"succeeded"}`))
	if err != nil {
		t.Fatal(err)
	}
	got, gotRev, err := runtime.KVLeaderGet(ctx, nc, wire.BucketCalls, "c1")
	if err != nil || string(got) != `{"status":"succeeded"}` || gotRev != rev {
		t.Errorf("c1 = %q rev %d, %v; want the last status, rev %d", got, gotRev, err, rev)
	}
	if got, gotRev, err := runtime.KVGet(ctx, nc, kv, "c1"); err != nil || string(got) != `{"status":"succeeded"}` || gotRev != rev {
		t.Errorf("KVGet c1 = %q rev %d, %v", got, gotRev, err)
	}
	if _, _, err := runtime.KVLeaderGet(ctx, nc, wire.BucketCalls, "missing"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("missing = %v, want ErrKeyNotFound", err)
	}
	if _, err := kv.Put(ctx, "c2", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runtime.KVLeaderGet(ctx, nc, wire.BucketCalls, "c2"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("deleted = %v, want ErrKeyNotFound", err)
	}
	if _, err := kv.Put(ctx, "c3", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "c3"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runtime.KVGet(ctx, nc, kv, "c3"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("purged = %v, want ErrKeyNotFound", err)
	}
}
