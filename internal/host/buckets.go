package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
)

// ensureBuckets creates or binds every bucket the manifest declares.
func ensureBuckets(ctx context.Context, js jetstream.JetStream, fn *manifests.Function, log *slog.Logger) (map[string]jetstream.KeyValue, error) {
	out := make(map[string]jetstream.KeyValue, len(fn.Spec.KV))
	for _, b := range fn.Spec.KV {
		history := b.History
		if history == 0 {
			history = 1
		}
		storage := jetstream.FileStorage
		if b.Storage == manifests.StorageMemory {
			storage = jetstream.MemoryStorage
		}
		kv, err := js.KeyValue(ctx, b.Bucket)
		if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			// Not "missing" (a timeout, no leader): creating would
			// overwrite an existing bucket's settings.
			return nil, fmt.Errorf("kv bucket %q: %w", b.Bucket, err)
		}
		if err != nil {
			kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket:  b.Bucket,
				TTL:     b.TTL.Std(),
				History: uint8(history),
				Storage: storage,
			})
			if err != nil {
				return nil, fmt.Errorf("kv bucket %q: %w", b.Bucket, err)
			}
		} else if st, serr := kv.Status(ctx); serr == nil {
			// An existing bucket keeps its settings: JetStream cannot move
			// a stream between file and memory storage.
			if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo().Config.Storage != storage {
				log.Warn("kv bucket exists with another storage than the manifest asks; delete it (nats kv rm) to recreate it",
					"bucket", b.Bucket, "has", bs.StreamInfo().Config.Storage.String(), "manifest", storage.String())
			}
		}
		out[b.Bucket] = kv
	}
	return out, nil
}
