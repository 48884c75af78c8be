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
	for key, remove := range map[string]func(context.Context, string, ...jetstream.KVDeleteOpt) error{
		"deleted": kv.Delete, "purged": kv.Purge} {
		if _, err := kv.Put(ctx, key, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if err := remove(ctx, key); err != nil {
			t.Fatal(err)
		}
		if _, _, err := runtime.KVLeaderGet(ctx, nc, wire.BucketCalls, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("%s = %v, want ErrKeyNotFound", key, err)
		}
	}
	// A replica behind the write (here: a bucket whose reads miss) is
	// covered by the leader's answer.
	got, gotRev, err = runtime.KVGet(ctx, nc, lagging{kv}, "c1")
	if err != nil || string(got) != `{"status":"succeeded"}` || gotRev != rev {
		t.Errorf("KVGet through a lagging replica = %q rev %d, %v; want the leader's value, rev %d", got, gotRev, err, rev)
	}
}

// lagging is a bucket read from a replica that has not applied any write.
type lagging struct{ jetstream.KeyValue }

func (lagging) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}
