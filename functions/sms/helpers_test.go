package sms

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/testenv"
	"github.com/surgefn/surge/runtime/store"
)

// fakeClock is a clock tests move by hand.
type fakeClock = testenv.Clock

func newFakeClock(t time.Time) *fakeClock { return testenv.NewClock(t) }

func newBucket(t *testing.T, js jetstream.JetStream, name string) jetstream.KeyValue {
	t.Helper()
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: name, TTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// memStore is a store.Messages in memory.
type memStore struct {
	mu      sync.Mutex
	msgs    map[string]store.SMS
	updates int
	failPut error
}

var _ store.Messages = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{msgs: map[string]store.SMS{}} }

func (s *memStore) PutSMS(_ context.Context, m store.SMS) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPut != nil {
		return false, s.failPut
	}
	if _, ok := s.msgs[m.MessageID]; ok {
		return false, nil
	}
	s.msgs[m.MessageID] = m
	return true, nil
}

func (s *memStore) UpdateSMS(_ context.Context, m store.SMS) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.msgs[m.MessageID]
	if !ok {
		return store.ErrNotFound
	}
	old.Status, old.Attempts, old.LastError, old.Text, old.UpdatedAt = m.Status, m.Attempts, m.LastError, m.Text, m.UpdatedAt
	s.msgs[m.MessageID] = old
	s.updates++
	return nil
}

func (s *memStore) GetSMS(_ context.Context, id string) (store.SMS, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return store.SMS{}, store.ErrNotFound
	}
	return m, nil
}

var errBoom = errors.New("boom")
