package host

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/wire"
)

// EnsureInfra creates the streams and buckets the platform itself uses, when
// missing: DLQ, CALLS, and the functions, calls and hosts buckets, each
// with r's replicas (existing ones with fewer are moved up). Every gateway
// and runtime host calls it at start; it is idempotent.
func EnsureInfra(ctx context.Context, js jetstream.JetStream, r Replication) error {
	if err := ensureStream(ctx, js, r, wire.StreamDLQ, []string{"dlq.>"}, 7*24*time.Hour, 0); err != nil {
		return err
	}
	if err := ensureStream(ctx, js, r, wire.StreamCalls, []string{"calls.>"}, 24*time.Hour, 0); err != nil {
		return err
	}
	buckets := []jetstream.KeyValueConfig{
		{Bucket: manifests.Bucket, History: 5, Storage: jetstream.FileStorage},
		{Bucket: wire.BucketCalls, TTL: 24 * time.Hour, Storage: jetstream.FileStorage},
		{Bucket: wire.BucketHosts, TTL: 15 * time.Second, Storage: jetstream.MemoryStorage},
	}
	for _, cfg := range buckets {
		if _, _, err := bindOrCreateKV(ctx, js, cfg, r); err != nil {
			return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// ensureStream makes sure stream name exists and captures subjects. A new
// stream is file-backed with limits retention, maxAge and r's replicas; an
// existing one keeps its settings, gets each subject none of its own
// covers, and is moved up to r's replicas when it has fewer.
func ensureStream(ctx context.Context, js jetstream.JetStream, r Replication, name string, subjects []string, maxAge, window time.Duration) error {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       name,
			Subjects:   subjects,
			Storage:    jetstream.FileStorage,
			Retention:  jetstream.LimitsPolicy,
			MaxAge:     maxAge, // 0: unlimited
			Replicas:   r.replicas(),
			Duplicates: duplicates(maxAge, window),
		})
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", name, err)
		}
		// Another host created it meanwhile: add what it lacks.
		s, err = js.Stream(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	what := "stream " + name
	_, addSubjects := mergeSubjects(s.CachedInfo().Config.Subjects, subjects)
	_, raise := r.wantReplicas(what, s.CachedInfo().Config.Replicas)
	if !addSubjects && !raise {
		return nil
	}
	// UpdateStream replaces the whole config and JetStream has no
	// compare-and-set on it, so two hosts adding subjects at once (every
	// host applies a deploy at about the same moment) would each drop the
	// other's, and a host raising the replicas could undo a subject another
	// just added. The read-merge-write runs under a lock.
	unlock, err := lockStream(ctx, js, r, name)
	if err != nil {
		return err
	}
	defer unlock()
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	merged, changed := mergeSubjects(info.Config.Subjects, subjects)
	if !changed {
		// Another host added them while this one waited.
		return r.raiseReplicas(ctx, js, what, info)
	}
	cfg := info.Config
	cfg.Subjects = merged
	// Never lower the replicas here: cfg has the stream's own count, moved
	// up if r wants more.
	want, raised := r.wantReplicas(what, cfg.Replicas)
	cfg.Replicas = want
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		if raised {
			// Say which half failed: the subjects alone may go in.
			cfg.Replicas = info.Config.Replicas
			if _, serr := js.UpdateStream(ctx, cfg); serr == nil {
				return replicasError(what, name, info.Config.Replicas, want, err)
			}
		}
		return fmt.Errorf("add subjects %v to stream %s: %w", subjects, name, err)
	}
	if raised {
		r.log().Info("replicas raised", "asset", what, "stream", name, "from", max(info.Config.Replicas, 1), "to", want)
	}
	return nil
}

// duplicates is the de-duplication window of a new stream keeping
// messages for maxAge (0: unlimited): window when set (the manifest's
// duplicateWindow, validated to be at most maxAge), else 2 minutes,
// JetStream's default, or maxAge when shorter (JetStream refuses a window
// longer than MaxAge).
func duplicates(maxAge, window time.Duration) time.Duration {
	if window > 0 {
		return window
	}
	if maxAge == 0 {
		return 2 * time.Minute
	}
	return min(2*time.Minute, maxAge)
}

// streamLockTTL is how long a stream lock lives at most: a host that dies
// holding it blocks the others no longer than that.
const streamLockTTL = 10 * time.Second

// lockStream takes the cluster-wide lock on stream name's config: a key
// created (never overwritten) in the memory bucket wire.BucketLocks, whose
// entries expire after streamLockTTL. It waits, with jitter, until the key
// is free or streamLockTTL has passed.
func lockStream(ctx context.Context, js jetstream.JetStream, r Replication, name string) (unlock func(), err error) {
	return takeLock(ctx, js, r, "stream."+name, "lock stream "+name)
}

// takeLock takes the cluster-wide lock key in wire.BucketLocks (see
// lockStream); what names it in errors.
func takeLock(ctx context.Context, js jetstream.JetStream, r Replication, key, what string) (unlock func(), err error) {
	kv, _, err := bindOrCreateKV(ctx, js, jetstream.KeyValueConfig{Bucket: wire.BucketLocks, TTL: streamLockTTL,
		Storage: jetstream.MemoryStorage}, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	deadline := time.Now().Add(streamLockTTL + time.Second)
	for {
		_, err := kv.Create(ctx, key, nil)
		if err == nil {
			return func() { _ = kv.Delete(context.WithoutCancel(ctx), key) }, nil
		}
		if !runtime.IsKVConflict(err) || time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-time.After(time.Duration(5+rand.Int64N(15)) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// mergeSubjects returns have with each subject of want that none of have
// covers, and without the subjects of have such an added one covers (a
// stream refuses overlapping subjects: x.a and x.> cannot both be there).
// changed is false when have already covers all of want.
func mergeSubjects(have, want []string) (merged []string, changed bool) {
	merged = slices.Clone(have)
	for _, w := range want {
		if slices.ContainsFunc(merged, func(h string) bool { return manifests.SubjectCovers(h, w) }) {
			continue
		}
		merged = slices.DeleteFunc(merged, func(h string) bool { return manifests.SubjectCovers(w, h) })
		merged = append(merged, w)
		changed = true
	}
	return merged, changed
}

// EnsureStreams makes sure of every stream fn needs before it starts: the
// stream of its trigger, capturing the filter (or the stream's default
// subject), and each stream under spec.publishes with its subjects, each
// with r's replicas.
//
// The streams under spec.publishes come first, so that a function that
// consumes a stream it also declares there gets the declared settings
// (maxAge "unlimited" for a ledger) rather than the trigger's defaults.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, fn *manifests.Function, r Replication) error {
	for _, p := range fn.Spec.Publishes {
		if err := ensureStream(ctx, js, r, p.Stream, p.Subjects, p.MaxAge.Std(), p.DuplicateWindow.Std()); err != nil {
			return err
		}
	}
	if fn.IsStream() {
		if err := ensureStream(ctx, js, r, fn.Spec.Trigger.Stream, []string{streamSubject(fn)}, manifests.DefaultStreamMaxAge, 0); err != nil {
			return err
		}
	}
	return nil
}

// defaultStreamSubject is the subject a new stream captures when a stream
// trigger names no filter: the stream name in lower case, then ".>".
func defaultStreamSubject(stream string) string {
	return strings.ToLower(stream) + ".>"
}
