package manifests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits enforced by Validate.
const (
	// MaxConcurrency is the largest spec.concurrency.
	MaxConcurrency = 100_000
	// MaxReplicas is the largest spec.replicas; the smallest is 0 (stopped).
	MaxReplicas = 64
	// MinTimeout is the shortest spec.timeout.
	MinTimeout = time.Millisecond
	// MaxTimeout is the longest spec.timeout.
	MaxTimeout = 10 * time.Minute
	// MaxMaxDeliver is the largest spec.retry.maxDeliver.
	MaxMaxDeliver = 100
	// MaxBackoff is the longest entry of spec.retry.backoff.
	MaxBackoff = time.Hour
	// MaxBatchSize is the largest spec.batch.size.
	MaxBatchSize = 10_000
	// MaxBatchWait is the longest spec.batch.wait.
	MaxBatchWait = 10 * time.Second
	// MaxBatchBytes is the largest spec.batch.maxBytes.
	MaxBatchBytes = 64 << 20
	// MaxKVHistory is the largest spec.kv[].history.
	MaxKVHistory = 64
)

// Normalize fills the defaults of fields left at zero: concurrency, timeout,
// retry.maxDeliver, batch.size, http.auth, autoscale.min and cooldown, each kv
// history and storage and each
// published stream's maxAge; it also rewrites
// spec.config as compact JSON with sorted keys, and drops an empty one, so
// equal configs compare equal. Normalize is idempotent.
//
// Replicas and batch.wait are left alone: zero is a valid value for both
// (stopped; no wait). Parse, ParseJSON and Decode set their defaults when
// the field is absent from the manifest; a Function built in Go must set
// them itself.
func (f *Function) Normalize() {
	s := &f.Spec
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultTimeout)
	}
	if s.Retry.MaxDeliver == 0 {
		s.Retry.MaxDeliver = DefaultMaxDeliver
	}
	if s.Batch.Size == 0 {
		s.Batch.Size = DefaultBatchSize
	}
	if s.Autoscale != nil {
		s.Autoscale.normalize()
	}
	if s.HTTP != nil && s.HTTP.Auth == "" {
		s.HTTP.Auth = AuthNone
	}
	for i := range s.KV {
		if s.KV[i].History == 0 {
			s.KV[i].History = 1
		}
		if s.KV[i].Storage == "" {
			s.KV[i].Storage = StorageFile
		}
	}
	for i := range s.Publishes {
		if s.Publishes[i].MaxAge == 0 {
			s.Publishes[i].MaxAge = Age(DefaultStreamMaxAge)
		}
	}
	s.Config = canonicalJSON(s.Config)
}

// canonicalJSON rewrites raw with sorted keys and no insignificant space;
// null and {} become nil. Invalid JSON is returned unchanged for Validate
// to report.
func canonicalJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return raw
	}
	if m, ok := v.(map[string]any); v == nil || ok && len(m) == 0 {
		return nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return raw
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Validate checks a normalized function against every rule of the manifest
// contract. It returns nil or all problems joined with errors.Join, each a
// *FieldError naming the field path and wrapping ErrRequired or ErrInvalid.
func (f *Function) Validate() error { return errors.Join(f.problems()...) }

// problems is Validate as a list, so decoders can locate each problem.
func (f *Function) problems() []error {
	var v checks
	v.equal("apiVersion", f.APIVersion, APIVersion)
	v.equal("kind", f.Kind, KindFunction)
	v.name("metadata.name", f.Metadata.Name)
	s := &f.Spec
	v.handler("spec.handler", s.Handler)
	v.trigger("spec.trigger", s.Trigger)
	if s.Queue != "" && !nameRE.MatchString(s.Queue) {
		v.add("spec.queue", ErrInvalid, "invalid queue %q: use letters, digits, '_' and '-'", s.Queue)
	}
	if s.HTTP != nil {
		v.http("spec.http", s.HTTP)
		// A route to a stream trigger publishes the request to the
		// filter, so the filter must be one subject.
		if s.Trigger.Stream != "" && (s.Trigger.Filter == "" || strings.ContainsAny(s.Trigger.Filter, "*>")) {
			v.add("spec.trigger.filter", ErrInvalid, "a stream trigger with an http route needs a literal filter (the subject the route publishes to), got %q", s.Trigger.Filter)
		}
	}
	v.put(intRange("spec.concurrency", s.Concurrency, 1, MaxConcurrency))
	v.put(intRange("spec.replicas", s.Replicas, 0, MaxReplicas))
	v.autoscale("spec.autoscale", s)
	v.put(durationRange("spec.timeout", s.Timeout, MinTimeout, MaxTimeout))
	v.put(intRange("spec.retry.maxDeliver", s.Retry.MaxDeliver, 1, MaxMaxDeliver))
	for i, b := range s.Retry.Backoff {
		v.put(durationRange(indexPath("spec.retry.backoff", i), b, time.Nanosecond, MaxBackoff))
	}
	if n := len(s.Retry.Backoff); n > s.Retry.MaxDeliver && s.Retry.MaxDeliver > 0 {
		// JetStream refuses such a consumer; say so at deploy time instead.
		v.add("spec.retry.backoff", ErrInvalid, "has %d entries, more than retry.maxDeliver (%d)", n, s.Retry.MaxDeliver)
	}
	v.put(intRange("spec.batch.size", s.Batch.Size, 1, MaxBatchSize))
	v.put(durationRange("spec.batch.wait", s.Batch.Wait, 0, MaxBatchWait))
	v.put(intRange("spec.batch.maxBytes", s.Batch.MaxBytes, 0, MaxBatchBytes))
	v.kv("spec.kv", s.KV)
	v.publishes("spec.publishes", s.Publishes)
	if s.Config != nil && (!json.Valid(s.Config) || bytes.TrimSpace(s.Config)[0] != '{') {
		v.add("spec.config", ErrInvalid, "must be a JSON object")
	}
	return v.errs
}

// Revision identifies the function's manifest: the first 12 hex digits of
// the SHA-256 of its normalized form as JSON. Equal manifests have equal
// revisions however they were written (key order, defaults spelled out or
// not), so a redeploy with an unchanged revision can be a no-op.
func (f *Function) Revision() string {
	c := *f
	c.Spec.KV = slices.Clone(f.Spec.KV)
	c.Spec.Publishes = slices.Clone(f.Spec.Publishes)
	if f.Spec.HTTP != nil {
		h := *f.Spec.HTTP
		c.Spec.HTTP = &h
	}
	if f.Spec.Autoscale != nil {
		a := *f.Spec.Autoscale
		c.Spec.Autoscale = &a
	}
	c.Normalize()
	b, err := json.Marshal(&c)
	if err != nil {
		// Only an invalid spec.config gets here; hash it as bytes instead.
		c.Spec.Config = nil
		b, _ = json.Marshal(&c)
		b = append(b, f.Spec.Config...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

// intRange reports v outside lo..hi, or returns nil.
func intRange(path string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fieldErr(path, ErrInvalid, fmt.Sprintf("must be between %d and %d, got %d", lo, hi, v))
	}
	return nil
}

// durationRange reports d outside lo..hi, or returns nil. A lower bound
// of 1ns reads "must be positive", of 0 "must not be negative".
func durationRange(path string, d Duration, lo, hi time.Duration) error {
	var reason string
	switch {
	case d.Std() < lo && lo == time.Nanosecond:
		reason = "must be positive, got " + d.String()
	case d.Std() < lo && lo == 0:
		reason = "must not be negative, got " + d.String()
	case d.Std() < lo:
		reason = fmt.Sprintf("must be at least %s, got %s", lo, d)
	case d.Std() > hi:
		reason = fmt.Sprintf("must be at most %s, got %s", hi, d)
	default:
		return nil
	}
	return fieldErr(path, ErrInvalid, reason)
}
