package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/wire"
)

// ensureBuckets creates or binds every bucket the manifest declares.
func ensureBuckets(ctx context.Context, js jetstream.JetStream, fn *manifests.Function, r Replication, log *slog.Logger) (map[string]jetstream.KeyValue, error) {
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
		}, r)
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

// bindOrCreateKV binds the bucket cfg names, creating it with cfg and r's
// replicas when it is missing. An existing bucket keeps its settings, also
// when another host creates it between the lookup and the create
// (CreateKeyValue, not CreateOrUpdateKeyValue), except that it is moved up
// to r's replicas when it has fewer; an error other than "missing" (a
// timeout, no leader) is returned, never answered with a create.
func bindOrCreateKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, r Replication) (kv jetstream.KeyValue, created bool, err error) {
	cfg.Replicas = r.replicas()
	kv, err = js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if err == nil {
			return kv, true, nil
		}
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, false, err
	}
	return kv, false, raiseKV(ctx, js, r, kv)
}

// raiseKV moves an existing bucket's stream (KV_<bucket>) up to r's
// replicas when it has fewer, under the stream's lock like any other
// config change (except for the locks bucket itself, whose config nothing
// else changes).
func raiseKV(ctx context.Context, js jetstream.JetStream, r Replication, kv jetstream.KeyValue) error {
	what := "kv bucket " + kv.Bucket()
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil
	}
	info := bs.StreamInfo()
	if _, raise := r.wantReplicas(what, info.Config.Replicas); !raise {
		return nil
	}
	if kv.Bucket() != wire.BucketLocks {
		unlock, err := lockStream(ctx, js, r, info.Config.Name)
		if err != nil {
			return err
		}
		defer unlock()
		s, err := js.Stream(ctx, info.Config.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		info = s.CachedInfo()
	}
	return r.raiseReplicas(ctx, js, what, info)
}
