package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

// Provider delivers one rendered message (msg.Text is set). An error
// wrapping ErrPermanent means retrying cannot help; any other error is
// retried with backoff.
type Provider interface {
	Send(ctx context.Context, msg store.SMS) error
}

// LogProvider "delivers" by logging the text; the sender records it in the
// store. It is the default, for development and tests.
type LogProvider struct {
	Logger *slog.Logger
}

// Send logs the message.
func (p LogProvider) Send(_ context.Context, msg store.SMS) error {
	p.Logger.Info("sms", "message_id", msg.MessageID, "phone", msg.Phone, "text", msg.Text)
	return nil
}

// WebhookProvider delivers by POSTing {message_id, phone, text} as JSON to
// URL. A 2xx is success; a 4xx other than 408 and 429 is permanent; a 5xx,
// a 408 or 429, a timeout or a connection error is retried.
type WebhookProvider struct {
	URL     string
	Timeout time.Duration
	Client  *http.Client
}

// webhookBody is what the webhook receives.
type webhookBody struct {
	MessageID string `json:"message_id"`
	Phone     string `json:"phone"`
	Text      string `json:"text"`
}

// Send POSTs the message and classifies the outcome.
func (p WebhookProvider) Send(ctx context.Context, msg store.SMS) error {
	b, err := json.Marshal(webhookBody{MessageID: msg.MessageID, Phone: msg.Phone, Text: msg.Text})
	if err != nil {
		return fmt.Errorf("%w: marshal: %w", ErrPermanent, err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%w: build request: %w", ErrPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", msg.MessageID)
	resp, err := p.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	// Read a little of the body for the error message, and let the
	// connection be reused.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return fmt.Errorf("%w: webhook answered %s: %s", ErrPermanent, resp.Status, bytes.TrimSpace(snippet))
	default:
		return fmt.Errorf("webhook answered %s: %s", resp.Status, bytes.TrimSpace(snippet))
	}
}
