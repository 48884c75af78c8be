package storetest

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

var _ = addDomain[store.Messages]("Messages", RunMessages)

// RunMessages is the sub-suite of store.Messages.
func RunMessages(t *testing.T, open Opener) { runDomain(t, open, testSMS, messagesClosed) }

// messagesClosed are the calls that must return store.ErrClosed after Close.
var messagesClosed = []closedCall[store.Messages]{
	{"PutSMS", func(ctx context.Context, s store.Messages) error {
		_, err := s.PutSMS(ctx, store.SMS{MessageID: "st-closed", Status: "queued"})
		return err
	}},
	{"UpdateSMS", func(ctx context.Context, s store.Messages) error {
		return s.UpdateSMS(ctx, store.SMS{MessageID: "st-closed", Status: "sent"})
	}},
	{"GetSMS", func(ctx context.Context, s store.Messages) error { _, err := s.GetSMS(ctx, "st-closed"); return err }},
}

func testSMS(t *testing.T, open func(t *testing.T) store.Messages) {
	s, g, ctx := open(t), newGen(t), ctxT(t)
	at := g.base()
	msg := store.SMS{
		MessageID: g.id("m"), Phone: "+8613800138000", Template: "verify",
		Params: map[string]string{"code": "123456"}, Status: "queued", CreatedAt: at, UpdatedAt: at,
	}
	t.Run("put new", func(t *testing.T) {
		created, err := s.PutSMS(ctx, msg)
		if err != nil || !created {
			t.Fatalf("PutSMS = %v, %v; want created", created, err)
		}
		checkSMS(t, s, msg)
	})
	t.Run("put again keeps the first", func(t *testing.T) {
		again := msg
		again.Phone, again.Status = "+8613900139000", "sent"
		created, err := s.PutSMS(ctx, again)
		if err != nil || created {
			t.Fatalf("PutSMS again = %v, %v; want not created", created, err)
		}
		checkSMS(t, s, msg)
	})
	t.Run("update", func(t *testing.T) {
		upd := msg
		upd.Phone, upd.Template, upd.Params = "ignored", "ignored", nil // not updated fields
		upd.Status, upd.Attempts, upd.LastError, upd.Text = "failed", 2, "gateway timeout", "Your code is 123456"
		upd.UpdatedAt = at.Add(time.Minute)
		if err := s.UpdateSMS(ctx, upd); err != nil {
			t.Fatalf("UpdateSMS: %v", err)
		}
		want := msg
		want.Status, want.Attempts, want.LastError, want.Text = upd.Status, upd.Attempts, upd.LastError, upd.Text
		checkSMS(t, s, want)
	})
	t.Run("update unknown", func(t *testing.T) {
		if err := s.UpdateSMS(ctx, store.SMS{MessageID: g.id("m"), Status: "sent"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateSMS of unknown id: err %v, want store.ErrNotFound", err)
		}
	})
	t.Run("get unknown", func(t *testing.T) {
		if _, err := s.GetSMS(ctx, g.id("m")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSMS of unknown id: err %v, want store.ErrNotFound", err)
		}
	})
}

// checkSMS compares the stored message with want; updated_at is left out,
// the contract does not say whether UpdateSMS sets it.
func checkSMS(t *testing.T, s store.Messages, want store.SMS) {
	t.Helper()
	got, err := s.GetSMS(ctxT(t), want.MessageID)
	if err != nil {
		t.Fatalf("GetSMS: %v", err)
	}
	same := got.MessageID == want.MessageID && got.Phone == want.Phone && got.Template == want.Template &&
		maps.Equal(got.Params, want.Params) && got.Text == want.Text && got.Status == want.Status &&
		got.Attempts == want.Attempts && got.LastError == want.LastError && got.CreatedAt.Equal(want.CreatedAt)
	if !same {
		t.Errorf("GetSMS = %+v, want %+v", got, want)
	}
}
