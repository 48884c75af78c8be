package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureInfra creates the streams and buckets the platform itself uses, when
// missing: DLQ, CALLS, and the functions, calls and hosts buckets. Every
// gateway and runtime host calls it at start; it is idempotent.
func EnsureInfra(ctx context.Context, js jetstream.JetStream) error {
	if err := EnsureStream(ctx, js, StreamDLQ, "dlq.>", 7*24*time.Hour); err != nil {
		return err
	}
	if err := EnsureStream(ctx, js, StreamCalls, "calls.>", 24*time.Hour); err != nil {
		return err
	}
	buckets := []jetstream.KeyValueConfig{
		{Bucket: BucketFunctions, History: 5, Storage: jetstream.FileStorage},
		{Bucket: BucketCalls, TTL: 24 * time.Hour, Storage: jetstream.FileStorage},
		{Bucket: BucketHosts, TTL: 15 * time.Second, Storage: jetstream.MemoryStorage},
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

// EnsureStream makes sure stream name exists and captures subject. A new
// stream is file-backed with limits retention and maxAge; an existing one
// gets subject added when none of its subjects covers it.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name, subject string, maxAge time.Duration) error {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       name,
			Subjects:   []string{subject},
			Storage:    jetstream.FileStorage,
			Retention:  jetstream.LimitsPolicy,
			MaxAge:     maxAge,
			Duplicates: 2 * time.Minute,
		})
		if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil
		}
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	cfg := s.CachedInfo().Config
	for _, have := range cfg.Subjects {
		if SubjectCovers(have, subject) {
			return nil
		}
	}
	cfg.Subjects = append(slices.Clone(cfg.Subjects), subject)
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("add subject %s to stream %s: %w", subject, name, err)
	}
	return nil
}

// SubjectCovers reports whether every subject matched by sub is matched by
// pattern (both may hold the '*' and '>' wildcards).
func SubjectCovers(pattern, sub string) bool {
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

// DefaultStreamSubject is the subject a new stream captures when a stream
// trigger names no filter: the stream name in lower case, then ".>".
func DefaultStreamSubject(stream string) string {
	return strings.ToLower(stream) + ".>"
}

// defaultMaxAge is how long a trigger stream created by surge keeps messages.
const defaultMaxAge = 72 * time.Hour
