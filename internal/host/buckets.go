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
		kv, created, err := bindOrCreateKV(ctx, js, jetstream.KeyValueConfig{
			Bucket:  b.Bucket,
			TTL:     b.TTL.Std(),
			History: uint8(history),
			Storage: storage,
		})
		if err != nil {
			return nil, fmt.Errorf("kv bucket %q: %w", b.Bucket, err)
		}
		// An existing bucket keeps its settings: JetStream cannot move a
		// stream between file and memory storage.
		if !created {
			if st, serr := kv.Status(ctx); serr == nil {
				if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo().Config.Storage != storage {
					log.Warn("kv bucket exists with another storage than the manifest asks; delete it (nats kv rm) to recreate it",
						"bucket", b.Bucket, "has", bs.StreamInfo().Config.Storage.String(), "manifest", storage.String())
				}
			}
		}
		out[b.Bucket] = kv
	}
	return out, nil
}

// bindOrCreateKV binds the bucket cfg names, creating it with cfg when it
// is missing. An existing bucket keeps its settings, also when another
// host creates it between the lookup and the create (CreateKeyValue, not
// CreateOrUpdateKeyValue), and an error other than "missing" (a timeout,
// no leader) is returned, never answered with a create.
func bindOrCreateKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (kv jetstream.KeyValue, created bool, err error) {
	kv, err = js.KeyValue(ctx, cfg.Bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, false, err
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, cfg.Bucket)
		return kv, false, err
	}
	return kv, err == nil, err
}
