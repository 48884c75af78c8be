package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Provider names accepted in the sender's config.
const (
	ProviderLog     = "log"
	ProviderWebhook = "webhook"
)

// DefaultWebhookTimeout bounds one webhook call when the config sets none.
const DefaultWebhookTimeout = 5 * time.Second

// Sender is the sms.sender module, triggered by the SMS stream on sms.send.
// For each queued message it renders the text, hands it to the configured
// Provider and records the outcome in the store: sent; queued with the
// attempt count while retries remain; failed (and dead-lettered at once)
// when the provider refuses it for good; dead on the last attempt, when
// the runtime dead-letters it. A message already sent is acked without
// sending again, so redeliveries are harmless. Its fields are spec.config.
type Sender struct {
	// Provider is "log" (default) or "webhook".
	Provider string `json:"provider"`
	// URL is the webhook endpoint (webhook only).
	URL string `json:"url"`
	// Timeout bounds one webhook call (webhook only; default 5s). Keep it
	// below the manifest's spec.timeout.
	Timeout manifests.Duration `json:"timeout"`

	provider    Provider
	store       store.Messages
	clock       runtime.Clock
	log         *slog.Logger
	maxDeliver  int
	concurrency int
}

var (
	_ runtime.BatchHandler = (*Sender)(nil)
	_ runtime.Provisioner  = (*Sender)(nil)
	_ runtime.Validator    = (*Sender)(nil)
)

// Validate fills the defaults and checks the provider settings.
func (s *Sender) Validate() error {
	if s.Provider == "" {
		s.Provider = ProviderLog
	}
	switch s.Provider {
	case ProviderLog:
		if s.URL != "" || s.Timeout != 0 {
			return errors.New("url, timeout: only used by the webhook provider")
		}
	case ProviderWebhook:
		u, err := url.Parse(s.URL)
		if s.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("url: must be an absolute http(s) URL, got %q", s.URL)
		}
		if s.Timeout == 0 {
			s.Timeout = manifests.Duration(DefaultWebhookTimeout)
		}
		if s.Timeout < 0 {
			return fmt.Errorf("timeout: must be positive, got %s", s.Timeout)
		}
	default:
		return fmt.Errorf("provider: must be %q or %q, got %q", ProviderLog, ProviderWebhook, s.Provider)
	}
	return nil
}

// Provision builds the provider and keeps the store and retry limit.
func (s *Sender) Provision(_ context.Context, env *runtime.Env) error {
	spec := env.Function.Spec
	if s.Provider == ProviderWebhook && spec.Timeout != 0 && s.Timeout >= spec.Timeout {
		return fmt.Errorf("spec.config.timeout (%s) must be shorter than spec.timeout (%s)", s.Timeout, spec.Timeout)
	}
	msgs, err := store.As[store.Messages](env.Store)
	if err != nil {
		return err
	}
	return s.setup(msgs, env.Clock, env.Logger, spec.Retry.MaxDeliver, spec.Concurrency, nil)
}

// setup wires the dependencies; tests call it with their own, and may
// replace the provider (nil builds the configured one).
func (s *Sender) setup(st store.Messages, clock runtime.Clock, log *slog.Logger, maxDeliver, concurrency int, p Provider) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if st == nil {
		return errors.New("sms.sender needs a store")
	}
	if p == nil {
		switch s.Provider {
		case ProviderWebhook:
			p = WebhookProvider{URL: s.URL, Timeout: s.Timeout.Std(), Client: &http.Client{}}
		default:
			p = LogProvider{Logger: log}
		}
	}
	s.provider, s.store, s.clock, s.log = p, st, clock, log
	s.maxDeliver = max(maxDeliver, 1)
	s.concurrency = max(concurrency, 1)
	return nil
}

// HandleBatch delivers each message of the batch, at most concurrency at once.
func (s *Sender) HandleBatch(ctx context.Context, batch []*runtime.Msg) error {
	runtime.ForEach(batch, s.concurrency, func(_ int, m *runtime.Msg) { s.deliver(ctx, m) })
	return nil
}

// deliver makes one attempt at one message and settles it.
func (s *Sender) deliver(ctx context.Context, m *runtime.Msg) {
	var q queued
	if err := json.Unmarshal(m.Data, &q); err != nil || q.MessageID == "" || !phoneRE.MatchString(q.Phone) {
		m.Reject(fmt.Errorf("invalid queued message: %s", describe(err, q)))
		return
	}
	rec, err := s.record(ctx, q)
	if err != nil {
		m.Fail(err)
		return
	}
	if rec.Status == StatusSent {
		return // delivered before; this is a redelivery
	}
	rec.Attempts = m.Delivered
	rec.Text, err = Render(q.Template, q.Params)
	if err == nil {
		err = s.provider.Send(ctx, rec)
	}
	rec.UpdatedAt = s.clock.Now()
	switch {
	case err == nil:
		rec.Status, rec.LastError = StatusSent, ""
	case errors.Is(err, ErrPermanent), errors.Is(err, ErrUnknownTemplate), errors.Is(err, ErrMissingParam):
		rec.Status, rec.LastError = StatusFailed, err.Error()
		m.Reject(err)
	case m.Delivered >= s.maxDeliver:
		rec.Status, rec.LastError = StatusDead, err.Error()
		m.Fail(err) // the last attempt: the runtime dead-letters it
	default:
		rec.Status, rec.LastError = StatusQueued, err.Error()
		m.Fail(err)
	}
	// Record the outcome even when the batch deadline passed during Send.
	if uerr := s.store.UpdateSMS(context.WithoutCancel(ctx), rec); uerr != nil {
		s.log.Error("record sms status", "message_id", rec.MessageID, "status", rec.Status, "err", uerr)
		if err == nil {
			// Retry so the status converges; the provider may see the
			// message twice, which is the at-least-once contract.
			m.Fail(fmt.Errorf("record sent status: %w", uerr))
		}
		return
	}
	if err != nil {
		s.log.Warn("sms delivery failed", "message_id", rec.MessageID, "attempt", m.Delivered, "status", rec.Status, "err", err)
	}
}

// record returns the stored message, storing it from the payload when the
// store has none (a publish made without sms.send).
func (s *Sender) record(ctx context.Context, q queued) (store.SMS, error) {
	rec, err := s.store.GetSMS(ctx, q.MessageID)
	if err == nil {
		return rec, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return rec, fmt.Errorf("get message %s: %w", q.MessageID, err)
	}
	now := s.clock.Now()
	rec = store.SMS{MessageID: q.MessageID, Phone: q.Phone, Template: q.Template, Params: q.Params,
		Status: StatusQueued, CreatedAt: now, UpdatedAt: now}
	created, err := s.store.PutSMS(ctx, rec)
	if err != nil {
		return rec, fmt.Errorf("store message %s: %w", q.MessageID, err)
	}
	if !created {
		// Another delivery stored it first; read back what won.
		if rec, err = s.store.GetSMS(ctx, q.MessageID); err != nil {
			return rec, fmt.Errorf("get message %s: %w", q.MessageID, err)
		}
	}
	return rec, nil
}

// describe says what is wrong with a queued payload.
func describe(err error, q queued) string {
	switch {
	case err != nil:
		return err.Error()
	case q.MessageID == "":
		return "message_id: required"
	}
	return fmt.Sprintf("phone: not E.164: %q", q.Phone)
}
