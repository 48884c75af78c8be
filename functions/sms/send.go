package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime"
	"github.com/surgefn/surge/runtime/store"
)

// Rate-limit defaults of sms.send.
const (
	DefaultWindow    = 60 * time.Second
	DefaultPerWindow = 1
	DefaultPerDay    = 10
)

// phoneRE is E.164: '+', a country code not starting with 0, 7 to 15 digits in all.
var phoneRE = regexp.MustCompile(`^\+[1-9]\d{6,14}$`)

// Send is the sms.send module (POST /v1/sms): it validates the request,
// takes a slot from the per-phone rate limits, stores the message as
// queued and publishes it on the SMS stream for sms.sender, then answers
// 202 with the message id. Its fields are the manifest's spec.config.
type Send struct {
	// Window is the sliding window of the short-term limit (default 60s, at most 24h).
	Window manifests.Duration `json:"window"`
	// PerWindow is how many messages a phone may get per Window (default 1).
	PerWindow int `json:"perWindow"`
	// PerDay is how many messages a phone may get per calendar day (default 10).
	PerDay int `json:"perDay"`
	// TimeZone is the IANA zone whose midnight starts a new day (default UTC).
	TimeZone string `json:"timeZone"`

	lim   *limiter
	js    jetstream.JetStream
	store store.Messages
	clock runtime.Clock
	log   *slog.Logger
}

var (
	_ runtime.Handler     = (*Send)(nil)
	_ runtime.Provisioner = (*Send)(nil)
	_ runtime.Validator   = (*Send)(nil)
)

// Validate fills the defaults and checks the limits.
func (s *Send) Validate() error {
	if s.Window == 0 {
		s.Window = manifests.Duration(DefaultWindow)
	}
	if s.PerWindow == 0 {
		s.PerWindow = DefaultPerWindow
	}
	if s.PerDay == 0 {
		s.PerDay = DefaultPerDay
	}
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	switch {
	case s.Window.Std() < time.Second || s.Window.Std() > 24*time.Hour:
		return fmt.Errorf("window: must be between 1s and 24h, got %s", s.Window)
	case s.PerWindow < 0 || s.PerWindow > 1000:
		return fmt.Errorf("perWindow: must be between 1 and 1000, got %d", s.PerWindow)
	case s.PerDay < 0 || s.PerDay > 100000:
		return fmt.Errorf("perDay: must be between 1 and 100000, got %d", s.PerDay)
	}
	if _, err := time.LoadLocation(s.TimeZone); err != nil {
		return fmt.Errorf("timeZone: %w", err)
	}
	return nil
}

// Provision opens the limits bucket. The SMS stream is declared under
// spec.publishes, so the host made sure of it.
func (s *Send) Provision(ctx context.Context, env *runtime.Env) error {
	if err := env.RequireStream(ctx, SubjectSend); err != nil {
		return err
	}
	kv, err := env.KV(BucketLimits)
	if err != nil {
		return err
	}
	msgs, err := store.As[store.Messages](env.Store)
	if err != nil {
		return err
	}
	return s.setup(kv, env.JS, msgs, env.Clock, env.Logger)
}

// setup wires the dependencies; tests call it with their own.
func (s *Send) setup(kv jetstream.KeyValue, js jetstream.JetStream, st store.Messages, clock runtime.Clock, log *slog.Logger) error {
	if err := s.Validate(); err != nil {
		return err
	}
	zone, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return err
	}
	if st == nil {
		return errors.New("sms.send needs a store")
	}
	s.lim = &limiter{kv: kv, window: s.Window.Std(), perWindow: s.PerWindow, perDay: s.PerDay, zone: zone}
	s.js, s.store, s.clock, s.log = js, st, clock, log
	return nil
}

// sendRequest is the body of POST /v1/sms.
type sendRequest struct {
	Phone    string `json:"phone" jsonschema:"pattern=^\\+[1-9]\\d{6,14}$;description=an E.164 number"`
	Template string `json:"template"`
	Params   params `json:"params" jsonschema:"optional"`
}

// params are template parameters; decoding them names the key whose value
// is not a string (encoding/json would only name "params").
type params map[string]string

// UnmarshalJSON decodes an object of strings.
func (p *params) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return runtime.BadRequest("params", "must be an object of strings")
	}
	out := make(params, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return runtime.BadRequest("params."+k, "must be a JSON string, got %s", v)
		}
		out[k] = s
	}
	*p = out
	return nil
}

// validate checks the request and returns a 400 naming the field at fault.
func (r *sendRequest) validate() error {
	switch {
	case r.Phone == "":
		return runtime.BadRequest("phone", "required")
	case !phoneRE.MatchString(r.Phone):
		return runtime.BadRequest("phone", "must be an E.164 number like +8613800138000, got %q", r.Phone)
	}
	return checkTemplate(r.Template, r.Params)
}

// sendResponse is the 202 body.
type sendResponse struct {
	MessageID string `json:"message_id"`
}

// Handle serves POST /v1/sms.
func (s *Send) Handle(ctx context.Context, req *runtime.Request) error {
	var in sendRequest
	if err := runtime.DecodeJSON(req.Data, &in, ""); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	now := s.clock.Now()
	lim, err := s.lim.allow(ctx, in.Phone, now)
	switch {
	case errors.Is(err, errContended):
		lim = &limited{retryAfter: time.Second, reason: "too many concurrent messages to this phone"}
	case err != nil:
		return runtime.Internal(err)
	}
	if lim != nil {
		ra := runtime.RetryAfter(lim.retryAfter)
		req.SetHeader(runtime.HeaderRetryAfter, ra)
		return runtime.Errorf(http.StatusTooManyRequests, "rate_limited", "%s; retry in %s seconds", lim.reason, ra)
	}

	id := ulid.MustNewDefault(now).String()
	rec := store.SMS{MessageID: id, Phone: in.Phone, Template: in.Template, Params: in.Params,
		Status: StatusQueued, CreatedAt: now, UpdatedAt: now}
	if _, err := s.store.PutSMS(ctx, rec); err != nil {
		return runtime.Internal(fmt.Errorf("store message %s: %w", id, err))
	}
	if err := s.enqueue(ctx, queued{MessageID: id, Phone: in.Phone, Template: in.Template, Params: in.Params}); err != nil {
		// The record exists but nothing will deliver it: say so in its status.
		rec.Status, rec.LastError, rec.UpdatedAt = StatusFailed, "enqueue failed", s.clock.Now()
		if uerr := s.store.UpdateSMS(context.WithoutCancel(ctx), rec); uerr != nil {
			s.log.Error("mark unqueued message failed", "message_id", id, "err", uerr)
		}
		return runtime.Internal(err)
	}
	return req.RespondJSON(http.StatusAccepted, sendResponse{MessageID: id})
}

// enqueue publishes the message on sms.send, de-duplicated on its id, and
// waits for the stream's ack.
func (s *Send) enqueue(ctx context.Context, q queued) error {
	b, err := json.Marshal(q)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: SubjectSend, Data: b, Header: nats.Header{runtime.HeaderMsgID: {q.MessageID}}}
	if _, err := runtime.PublishDurable(ctx, s.js, msg); err != nil {
		return fmt.Errorf("publish %s: %w", q.MessageID, err)
	}
	return nil
}
