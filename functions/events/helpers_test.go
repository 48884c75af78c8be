package events

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime/store"
)

func newBucket(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: BucketStats})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// memStore is a store.Events in memory, with the interface's contract: a
// batch's Seq is applied at most once.
type memStore struct {
	mu       sync.Mutex
	seqs     map[uint64]bool
	counts   map[string]store.Counts
	applyErr error
	calls    int
}

var _ store.Events = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{seqs: map[uint64]bool{}, counts: map[string]store.Counts{}}
}

func (s *memStore) ApplyEvents(_ context.Context, bs []store.EventBatch) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.applyErr != nil {
		return 0, s.applyErr
	}
	n := 0
	for _, b := range bs {
		if s.seqs[b.Seq] {
			continue
		}
		s.seqs[b.Seq] = true
		n++
		for id, c := range b.Items {
			have := s.counts[id]
			have.Add(c)
			s.counts[id] = have
		}
	}
	return n, nil
}

func (s *memStore) ItemStats(_ context.Context, id string) (store.Counts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[id], nil
}
