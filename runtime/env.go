package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/store"
)

// Clock tells the time; tests inject a fake one for days, TTLs and backoff.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Env is what a function instance gets from the platform.
type Env struct {
	Function manifests.Function
	NC       *nats.Conn
	JS       jetstream.JetStream
	Store    store.Store // nil without a store; a function asks for its domains with store.As in Provision
	Logger   *slog.Logger
	Metrics  prometheus.Registerer
	Clock    Clock // never nil: the host's clock, SystemClock by default
	// Buckets holds the buckets declared under spec.kv, by name: the host
	// fills it before Provision, and a test may put its own in. Functions
	// read it through KV.
	Buckets map[string]jetstream.KeyValue
}

// KV returns the bucket declared under spec.kv in the manifest; the host
// created it when missing.
func (e *Env) KV(name string) (jetstream.KeyValue, error) {
	kv, ok := e.Buckets[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoKVBucket, name)
	}
	return kv, nil
}

// RequireStream checks that a JetStream stream captures subject, so that a
// function publishing there fails in Provision, naming the subject, when
// its manifest does not declare the stream under spec.publishes (the host
// creates those before Provision), instead of failing every call.
func (e *Env) RequireStream(ctx context.Context, subject string) error {
	_, err := e.JS.StreamNameBySubject(ctx, subject)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w %s: declare its stream under spec.publishes in the manifest of %s", ErrNoStream, subject, e.Function.Metadata.Name)
	}
	if err != nil {
		return fmt.Errorf("stream for %s: %w", subject, err)
	}
	return nil
}

// IsKVConflict reports a failed compare-and-set on a KV key: Create found
// the key, or Update found another revision. The server answers such a
// conflict with API error 10071 on a bucket of one replica and 10164
// (wrong last sequence, constant) on a replicated one; nats.go maps both to
// ErrKeyExists or ErrKeyRevisionMismatch for KV calls, and the codes are
// checked as well for a raw publish with an expected last subject sequence
// (what a batched CAS write does).
func IsKVConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
