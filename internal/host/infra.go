package host

import (
	"context"
	"errors"
	"fmt"
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
		if _, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
			continue
		}
		if _, err := js.CreateKeyValue(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("create bucket %s: %w", cfg.Bucket, err)
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
	cfg := s.CachedInfo().Config
	have := slices.Clone(cfg.Subjects)
	for _, sub := range subjects {
		if !slices.ContainsFunc(have, func(p string) bool { return subjectCovers(p, sub) }) {
			have = append(have, sub)
		}
	}
	if len(have) == len(cfg.Subjects) {
		return nil
	}
	added := have[len(cfg.Subjects):]
	cfg.Subjects = have
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("add subjects %v to stream %s: %w", added, name, err)
	}
	return nil
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

// subjectCovers reports whether every subject matched by sub is matched by
// pattern (both may hold the '*' and '>' wildcards).
func subjectCovers(pattern, sub string) bool {
	pt := strings.Split(pattern, ".")
	st := strings.Split(sub, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		switch {
		case p == "*":
			if st[i] == ">" {
				return false
			}
		case p != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}

// defaultStreamSubject is the subject a new stream captures when a stream
// trigger names no filter: the stream name in lower case, then ".>".
func defaultStreamSubject(stream string) string {
	return strings.ToLower(stream) + ".>"
}
