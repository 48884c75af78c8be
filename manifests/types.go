// Package manifests defines the surge Function manifest, decodes it strictly
// from YAML or JSON, validates it, and keeps the deployed set in a JetStream
// KV bucket that every gateway and runtime host watches.
//
// The directory also holds the manifests of the built-in functions, which
// `surge up --manifests manifests` deploys at start; testdata/ holds the
// golden cases for the validator and is never deployed.
package manifests

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// APIVersion is the only apiVersion this release accepts.
const APIVersion = "surge/v1"

// KindFunction is the only kind this release accepts.
const KindFunction = "Function"

// HandlerExternal marks a function whose code runs outside surge: the
// platform adds the route and the subject, any NATS client serves it.
const HandlerExternal = "external"

// Function is one deployed function: the YAML document a user writes.
type Function struct {
	APIVersion string   `json:"apiVersion" yaml:"apiVersion"`
	Kind       string   `json:"kind" yaml:"kind"`
	Metadata   Metadata `json:"metadata" yaml:"metadata"`
	Spec       Spec     `json:"spec" yaml:"spec"`
}

// Metadata names a function.
type Metadata struct {
	Name string `json:"name" yaml:"name"`
}

// Spec says what runs, what triggers it and how it is exposed.
type Spec struct {
	Handler     string          `json:"handler" yaml:"handler"`
	Trigger     Trigger         `json:"trigger" yaml:"trigger"`
	Queue       string          `json:"queue,omitempty" yaml:"queue,omitempty"`
	HTTP        *HTTP           `json:"http,omitempty" yaml:"http,omitempty"`
	Concurrency int             `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	Replicas    int             `json:"replicas" yaml:"replicas"`                       // 0 means stopped: never omitted
	Autoscale   *Autoscale      `json:"autoscale,omitempty" yaml:"autoscale,omitempty"` // replicas is then the starting count
	Timeout     Duration        `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	Retry       Retry           `json:"retry,omitempty" yaml:"retry,omitempty"`
	Batch       Batch           `json:"batch,omitempty" yaml:"batch,omitempty"`
	KV          []KVBucket      `json:"kv,omitempty" yaml:"kv,omitempty"`
	Publishes   []Stream        `json:"publishes,omitempty" yaml:"publishes,omitempty"`
	Config      json.RawMessage `json:"config,omitempty" yaml:"config,omitempty"`
}

// Trigger is either a request subject (core NATS queue group, request-reply)
// or a JetStream stream with an optional filter subject (durable consumer).
type Trigger struct {
	Subject string `json:"subject,omitempty" yaml:"subject,omitempty"`
	Stream  string `json:"stream,omitempty" yaml:"stream,omitempty"`
	Filter  string `json:"filter,omitempty" yaml:"filter,omitempty"`
}

// HTTP is the optional gateway route of a function.
type HTTP struct {
	Method string `json:"method" yaml:"method"`
	// Path is an absolute path; a segment written {name} is a parameter.
	Path  string `json:"path" yaml:"path"`
	Async bool   `json:"async,omitempty" yaml:"async,omitempty"`
	// Auth is who may call the route: AuthNone (the default), AuthUser
	// (an end-user JWT the gateway verifies) or AuthAdmin (the admin
	// token). It applies to POST /function/{name} and
	// /async-function/{name} of the same function too.
	Auth string `json:"auth" yaml:"auth"`
}

// Values of spec.http.auth.
const (
	// AuthNone lets anyone call the route.
	AuthNone = "none"
	// AuthUser requires "Authorization: Bearer <JWT>" of an end user; the
	// function receives the token's sub claim as Surge-User-Id.
	AuthUser = "user"
	// AuthAdmin requires the platform's admin token.
	AuthAdmin = "admin"
)

// authModes lists the values of spec.http.auth, in the order errors name them.
var authModes = []string{AuthNone, AuthUser, AuthAdmin}

// Retry bounds redelivery of stream-triggered messages.
type Retry struct {
	MaxDeliver int        `json:"maxDeliver,omitempty" yaml:"maxDeliver,omitempty"`
	Backoff    []Duration `json:"backoff,omitempty" yaml:"backoff,omitempty"`
}

// Batch sets how a stream trigger groups messages for its handler.
type Batch struct {
	Size int      `json:"size,omitempty" yaml:"size,omitempty"`
	Wait Duration `json:"wait" yaml:"wait"` // 0 means no wait: never omitted
	// MaxBytes, when set, also ends a batch once its messages' data adds
	// up to this many bytes (the message that crosses it is the last), so
	// a function whose messages carry many items each (orders.submit
	// arrays) gets a bounded amount of work per batch.
	MaxBytes int `json:"maxBytes,omitempty" yaml:"maxBytes,omitempty"`
}

// KVBucket is a JetStream KV bucket the function uses; the runtime creates
// it when missing.
type KVBucket struct {
	Bucket  string   `json:"bucket" yaml:"bucket"`
	TTL     Duration `json:"ttl,omitempty" yaml:"ttl,omitempty"`
	History int      `json:"history,omitempty" yaml:"history,omitempty"`
	// Storage is where the server keeps the bucket: "file" (the default)
	// or "memory", for a pure cache that may start empty after a server
	// restart and should cost no disk writes.
	Storage string `json:"storage,omitempty" yaml:"storage,omitempty"`
}

// Stream is a JetStream stream the function publishes to. The runtime
// creates it when missing before the function starts, or adds the subjects
// an existing one lacks; an existing stream keeps its other settings.
type Stream struct {
	Stream   string   `json:"stream" yaml:"stream"`
	Subjects []string `json:"subjects" yaml:"subjects"`
	// MaxAge is how long a stream the runtime creates keeps a message:
	// a Go duration, or "unlimited" for a stream that is a record (a
	// stock ledger), not a queue.
	MaxAge Age `json:"maxAge,omitempty" yaml:"maxAge,omitempty"`
	// DuplicateWindow is how long a stream the runtime creates remembers
	// each Nats-Msg-Id, so that a second publish of it is acked as a
	// duplicate and not stored: a Go duration up to maxAge; 0 (the
	// default) is JetStream's 2 minutes, or maxAge when that is shorter.
	// The server holds every id of the window in memory, about 120 B each:
	// at 45k messages/s, 2 minutes are 5.4M ids, about 650 MB. A stream
	// whose consumer is idempotent on a key of its own (ORDERS: order_id)
	// stays exactly-once with a shorter one.
	DuplicateWindow Duration `json:"duplicateWindow,omitempty" yaml:"duplicateWindow,omitempty"`
}

// MinDuplicateWindow is the shortest de-duplication window JetStream
// accepts.
const MinDuplicateWindow = 100 * time.Millisecond

// Age is a stream's MaxAge: a duration, or Unlimited.
type Age Duration

// Unlimited is the Age "unlimited": the stream keeps its messages. (Not
// -1: "-1ns" is a negative age, refused.)
const Unlimited Age = math.MinInt64

// Std returns a as JetStream's MaxAge, where 0 is unlimited.
func (a Age) Std() time.Duration {
	if a == Unlimited {
		return 0
	}
	return time.Duration(a)
}

// String formats a as "unlimited" or a Go duration string.
func (a Age) String() string {
	if a == Unlimited {
		return "unlimited"
	}
	return time.Duration(a).String()
}

// MarshalJSON writes a as its String.
func (a Age) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON reads "unlimited" or a duration string.
func (a *Age) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "unlimited" {
		*a = Unlimited
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`%w (or "unlimited")`, err)
	}
	*a = Age(v)
	return nil
}

// Storage values of a KV bucket.
const (
	StorageFile   = "file"
	StorageMemory = "memory"
)

// Duration is a time.Duration written as a Go duration string ("250ms").
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d as a Go duration string.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Defaults applied by Normalize to fields left empty.
const (
	DefaultConcurrency = 256
	DefaultReplicas    = 1
	DefaultTimeout     = 2 * time.Second
	DefaultMaxDeliver  = 5
	DefaultBatchSize   = 100
	DefaultBatchWait   = 5 * time.Millisecond
	// DefaultStreamMaxAge is how long a stream created by surge keeps a
	// message, for spec.publishes and for the stream of a stream trigger.
	DefaultStreamMaxAge = 72 * time.Hour
)

// IsStream reports whether the function is triggered by a JetStream stream.
func (f *Function) IsStream() bool { return f.Spec.Trigger.Stream != "" }

// QueueName is the queue group (request triggers) or durable consumer name
// (stream triggers): spec.queue, or the function name.
func (f *Function) QueueName() string {
	if f.Spec.Queue != "" {
		return f.Spec.Queue
	}
	return f.Metadata.Name
}
