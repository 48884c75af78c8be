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
	"github.com/surgefn/surge/runtime/wire"
)

// EnsureInfra creates the streams and buckets the platform itself uses, when
// missing: DLQ, CALLS, and the functions, calls and hosts buckets. Every
// gateway and runtime host calls it at start; it is idempotent.
func EnsureInfra(ctx context.Context, js jetstream.JetStream) error {
	if err := ensureStream(ctx, js, wire.StreamDLQ, []string{"dlq.>"}, 7*24*time.Hour); err != nil {
		return err
	}
	if err := ensureStream(ctx, js, wire.StreamCalls, []string{"calls.>"}, 24*time.Hour); err != nil {
		return err
	}
	buckets := []jetstream.KeyValueConfig{
		{Bucket: manifests.Bucket, History: 5, Storage: jetstream.FileStorage},
		{Bucket: wire.BucketCalls, TTL: 24 * time.Hour, Storage: jetstream.FileStorage},
		{Bucket: wire.BucketHosts, TTL: 15 * time.Second, Storage: jetstream.MemoryStorage},
	}
	for _, cfg := range buckets {
		if _, _, err := bindOrCreateKV(ctx, js, cfg); err != nil {
			return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// ensureStream makes sure stream name exists and captures subjects. A new
// stream is file-backed with limits retention and maxAge; an existing one
// keeps its settings and gets each subject none of its own covers.
func ensureStream(ctx context.Context, js jetstream.JetStream, name string, subjects []string, maxAge time.Duration) error {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:      name,
			Subjects:  subjects,
			Storage:   jetstream.FileStorage,
			Retention: jetstream.LimitsPolicy,
			MaxAge:    maxAge,
			// JetStream refuses a duplicate window longer than MaxAge.
			Duplicates: min(2*time.Minute, maxAge),
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
	info := s.CachedInfo()
	// UpdateStream replaces the whole subject list, so two hosts adding
	// subjects at once (every host applies a deploy at about the same
	// moment) can each drop the other's. Read the stream back after each
	// update and repeat until every subject is captured.
	var uerr error
	for attempt := 0; ; attempt++ {
		cfg := info.Config
		merged, changed := mergeSubjects(cfg.Subjects, subjects)
		if !changed {
			return nil
		}
		if attempt == maxStreamUpdates {
			if uerr != nil {
				return fmt.Errorf("add subjects %v to stream %s: %w", subjects, name, uerr)
			}
			return fmt.Errorf("add subjects %v to stream %s: still missing after %d updates (another process keeps changing its subjects)", subjects, name, attempt)
		}
		cfg.Subjects = merged
		_, uerr = js.UpdateStream(ctx, cfg)
		if attempt > 0 || uerr != nil {
			// Back off a little, with jitter, so racing hosts interleave.
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(20*time.Millisecond)) * int64(attempt+1))):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if info, err = s.Info(ctx); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
}

// maxStreamUpdates bounds ensureStream's update-and-check rounds.
const maxStreamUpdates = 10

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
// subject), and each stream under spec.publishes with its subjects.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, fn *manifests.Function) error {
	if fn.IsStream() {
		if err := ensureStream(ctx, js, fn.Spec.Trigger.Stream, []string{streamSubject(fn)}, manifests.DefaultStreamMaxAge); err != nil {
			return err
		}
	}
	for _, p := range fn.Spec.Publishes {
		if err := ensureStream(ctx, js, p.Stream, p.Subjects, p.MaxAge.Std()); err != nil {
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
