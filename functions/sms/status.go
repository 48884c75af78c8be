package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Status is the sms.status module (GET /v1/sms/{message_id}): a message's
// delivery state, read from the store.
type Status struct {
	store store.Messages
}

var (
	_ runtime.Handler     = (*Status)(nil)
	_ runtime.Provisioner = (*Status)(nil)
)

// Provision keeps the store.
func (s *Status) Provision(_ context.Context, env *runtime.Env) error {
	msgs, err := store.As[store.Messages](env.Store)
	if err != nil {
		return err
	}
	s.store = msgs
	return nil
}

// statusResponse is the body of GET /v1/sms/{message_id}.
type statusResponse struct {
	MessageID string `json:"message_id"`
	Status    string `json:"status" jsonschema:"enum=queued|sent|failed|dead"`
	Attempts  int    `json:"attempts"`
}

// Handle serves GET /v1/sms/{message_id}.
func (s *Status) Handle(ctx context.Context, req *runtime.Request) error {
	id := req.Param("message_id")
	if id == "" && len(req.Data) > 0 {
		// Called over NATS without the gateway: the id may be in the body.
		var body struct {
			MessageID string `json:"message_id"`
		}
		if err := runtime.DecodeJSON(req.Data, &body, ""); err != nil {
			return err
		}
		id = body.MessageID
	}
	if id == "" || len(id) > 64 {
		return runtime.Errorf(http.StatusNotFound, "message_not_found", "no message %q", id)
	}
	m, err := s.store.GetSMS(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return runtime.Errorf(http.StatusNotFound, "message_not_found", "no message %q", id)
	case err != nil:
		return runtime.Internal(fmt.Errorf("get message %s: %w", id, err))
	}
	return req.RespondJSON(http.StatusOK, statusResponse{MessageID: m.MessageID, Status: m.Status, Attempts: m.Attempts})
}
