package manifests

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// valid returns a normalized function that passes Validate; tests change one
// thing at a time.
func valid() Function {
	f := Function{
		APIVersion: APIVersion,
		Kind:       KindFunction,
		Metadata:   Metadata{Name: "order-accept"},
		Spec: Spec{
			Handler:   "orders.accept",
			Trigger:   Trigger{Subject: "fn.orders.accept"},
			HTTP:      &HTTP{Method: "POST", Path: "/v1/orders"},
			Replicas:  DefaultReplicas,
			Retry:     Retry{Backoff: []Duration{Duration(time.Second)}},
			Batch:     Batch{Wait: Duration(DefaultBatchWait)},
			KV:        []KVBucket{{Bucket: "orders_hot"}},
			Publishes: []Stream{{Stream: "ORDERS", Subjects: []string{"orders.submit"}}},
			Config:    json.RawMessage(`{"b":1,"a":[true]}`),
		},
	}
	f.Normalize()
	return f
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*Function)
		want     string // "" for valid
		wantErrs error  // sentinel the error wraps, when want is set
	}{
		{name: "valid", edit: func(*Function) {}},
		{name: "external handler", edit: func(f *Function) { f.Spec.Handler = HandlerExternal }},
		{name: "missing apiVersion", edit: func(f *Function) { f.APIVersion = "" }, want: "apiVersion: required", wantErrs: ErrRequired},
		{name: "wrong kind", edit: func(f *Function) { f.Kind = "Service" }, want: `kind: must be "Function", got "Service"`, wantErrs: ErrInvalid},
		{name: "missing name", edit: func(f *Function) { f.Metadata.Name = "" }, want: "metadata.name: required", wantErrs: ErrRequired},
		{name: "name 63 chars", edit: func(f *Function) { f.Metadata.Name = "a23456789012345678901234567890123456789012345678901234567890123" }},
		{name: "name 64 chars", edit: func(f *Function) {
			f.Metadata.Name = "a234567890123456789012345678901234567890123456789012345678901234"
		},
			want: `metadata.name: invalid name "a234567890123456789012345678901234567890123456789012345678901234": longer than 63 characters`, wantErrs: ErrInvalid},
		{name: "name leading dash", edit: func(f *Function) { f.Metadata.Name = "-x" },
			want: `metadata.name: invalid name "-x": use lowercase letters, digits and '-', starting and ending with a letter or digit`, wantErrs: ErrInvalid},
		{name: "name digits only", edit: func(f *Function) { f.Metadata.Name = "42" }},
		{name: "missing handler", edit: func(f *Function) { f.Spec.Handler = "" }, want: "spec.handler: required", wantErrs: ErrRequired},
		{name: "handler starts with digit", edit: func(f *Function) { f.Spec.Handler = "1orders" },
			want: `spec.handler: invalid handler id "1orders": use lowercase letters, digits, '_', '.' and '-', starting with a letter`},
		{name: "stream with filter wildcards", edit: func(f *Function) {
			f.Spec.Trigger = Trigger{Stream: "ORDERS", Filter: "orders.*.>"}
			f.Spec.HTTP = nil
		}},
		{name: "filter without stream", edit: func(f *Function) { f.Spec.Trigger.Filter = "orders.submit" },
			want: "spec.trigger.filter: only allowed with stream"},
		{name: "filter > not last", edit: func(f *Function) { f.Spec.Trigger = Trigger{Stream: "ORDERS", Filter: "orders.>.x"}; f.Spec.HTTP = nil },
			want: `spec.trigger.filter: invalid subject "orders.>.x": '>' must be the last token`},
		{name: "filter partial wildcard", edit: func(f *Function) { f.Spec.Trigger = Trigger{Stream: "ORDERS", Filter: "orders.a*"}; f.Spec.HTTP = nil },
			want: `spec.trigger.filter: invalid subject "orders.a*": a wildcard must be a whole token`},
		{name: "subject wildcard", edit: func(f *Function) { f.Spec.Trigger.Subject = "fn.>" },
			want: `spec.trigger.subject: invalid subject "fn.>": wildcards are not allowed here`},
		{name: "subject space", edit: func(f *Function) { f.Spec.Trigger.Subject = "fn.orders accept" },
			want: `spec.trigger.subject: invalid subject "fn.orders accept": contains whitespace`},
		{name: "subject trailing dot", edit: func(f *Function) { f.Spec.Trigger.Subject = "fn.orders." },
			want: `spec.trigger.subject: invalid subject "fn.orders.": empty token`},
		{name: "bad stream name", edit: func(f *Function) { f.Spec.Trigger = Trigger{Stream: "ORD.ERS"}; f.Spec.HTTP = nil },
			want: `spec.trigger.stream: invalid stream name "ORD.ERS": use letters, digits, '_' and '-'`},
		{name: "route to a stream trigger with a wildcard filter", edit: func(f *Function) {
			f.Spec.Trigger = Trigger{Stream: "ORDERS", Filter: "orders.*"}
		}, want: `spec.trigger.filter: a stream trigger with an http route needs a literal filter (the subject the route publishes to), got "orders.*"`},
		{name: "route to a stream trigger with a literal filter", edit: func(f *Function) {
			f.Spec.Trigger = Trigger{Stream: "ORDERS", Filter: "orders.submit"}
		}},
		{name: "queue ok", edit: func(f *Function) { f.Spec.Queue = "Order_accept-2" }},
		{name: "method missing", edit: func(f *Function) { f.Spec.HTTP.Method = "" }, want: "spec.http.method: required"},
		{name: "async PUT", edit: func(f *Function) { f.Spec.HTTP.Method, f.Spec.HTTP.Async = "PUT", true }},
		{name: "async DELETE", edit: func(f *Function) { f.Spec.HTTP.Method, f.Spec.HTTP.Async = "DELETE", true },
			want: "spec.http.async: only allowed with POST, PUT or PATCH, not DELETE"},
		{name: "path missing", edit: func(f *Function) { f.Spec.HTTP.Path = "" }, want: "spec.http.path: required", wantErrs: ErrRequired},
		{name: "path root", edit: func(f *Function) { f.Spec.HTTP.Path = "/" }, want: `spec.http.path: invalid path "/": empty segment`},
		{name: "path trailing slash", edit: func(f *Function) { f.Spec.HTTP.Path = "/v1/orders/" },
			want: `spec.http.path: invalid path "/v1/orders/": empty segment`},
		{name: "path wildcard", edit: func(f *Function) { f.Spec.HTTP.Path = "/v1/*" },
			want: `spec.http.path: invalid path "/v1/*": wildcards are not allowed`},
		{name: "path partial param", edit: func(f *Function) { f.Spec.HTTP.Path = "/v1/x{id}" },
			want: `spec.http.path: invalid path "/v1/x{id}": a parameter must be a whole segment, like {name}`},
		{name: "path duplicate param", edit: func(f *Function) { f.Spec.HTTP.Path = "/v1/{id}/x/{id}" },
			want: `spec.http.path: invalid path "/v1/{id}/x/{id}": duplicate parameter "id"`},
		{name: "path two params", edit: func(f *Function) { f.Spec.HTTP.Path = "/v1/users/{user_id}/orders/{order_id}" }},
		{name: "path dot segment", edit: func(f *Function) { f.Spec.HTTP.Path = "/v1/../admin" },
			want: `spec.http.path: invalid path "/v1/../admin": dot segments are not allowed`},
		{name: "path query", edit: func(f *Function) { f.Spec.HTTP.Path = "/v1/orders?x=1" },
			want: `spec.http.path: invalid path "/v1/orders?x=1": segment "orders?x=1" has characters that need escaping`},
		{name: "reserved healthz", edit: func(f *Function) { f.Spec.HTTP.Path = "/healthz" },
			want: `spec.http.path: invalid path "/healthz": /healthz is reserved by the platform`},
		{name: "reserved function", edit: func(f *Function) { f.Spec.HTTP.Path = "/function/order-accept" },
			want: `spec.http.path: invalid path "/function/order-accept": /function is reserved by the platform`},
		{name: "reserved calls", edit: func(f *Function) { f.Spec.HTTP.Path = "/calls/{id}" },
			want: `spec.http.path: invalid path "/calls/{id}": /calls is reserved by the platform`},
		{name: "reserved console", edit: func(f *Function) { f.Spec.HTTP.Path = "/console/{page}" },
			want: `spec.http.path: invalid path "/console/{page}": /console is reserved by the platform`},
		{name: "auth user", edit: func(f *Function) { f.Spec.HTTP.Auth = AuthUser }},
		{name: "auth admin", edit: func(f *Function) { f.Spec.HTTP.Auth = AuthAdmin }},
		{name: "auth unknown", edit: func(f *Function) { f.Spec.HTTP.Auth = "jwt" },
			want: `spec.http.auth: must be one of none, user, admin, got "jwt"`, wantErrs: ErrInvalid},
		{name: "auth not normalized", edit: func(f *Function) { f.Spec.HTTP.Auth = "" },
			want: `spec.http.auth: must be one of none, user, admin, got ""`, wantErrs: ErrInvalid},
		{name: "not reserved functions", edit: func(f *Function) { f.Spec.HTTP.Path = "/functions" }},
		{name: "concurrency max", edit: func(f *Function) { f.Spec.Concurrency = MaxConcurrency }},
		{name: "concurrency negative", edit: func(f *Function) { f.Spec.Concurrency = -1 },
			want: "spec.concurrency: must be between 1 and 100000, got -1"},
		{name: "replicas zero", edit: func(f *Function) { f.Spec.Replicas = 0 }},
		{name: "replicas 64", edit: func(f *Function) { f.Spec.Replicas = MaxReplicas }},
		{name: "timeout min", edit: func(f *Function) { f.Spec.Timeout = Duration(time.Millisecond) }},
		{name: "timeout under min", edit: func(f *Function) { f.Spec.Timeout = Duration(time.Microsecond) },
			want: "spec.timeout: must be at least 1ms, got 1µs"},
		{name: "maxDeliver 101", edit: func(f *Function) { f.Spec.Retry.MaxDeliver = 101 },
			want: "spec.retry.maxDeliver: must be between 1 and 100, got 101"},
		{name: "backoff zero", edit: func(f *Function) { f.Spec.Retry.Backoff = []Duration{Duration(time.Second), 0} },
			want: "spec.retry.backoff[1]: must be positive, got 0s"},
		{name: "backoff as long as maxDeliver", edit: func(f *Function) {
			f.Spec.Retry = Retry{MaxDeliver: 2, Backoff: []Duration{1, 2}}
		}},
		{name: "batch wait zero", edit: func(f *Function) { f.Spec.Batch.Wait = 0 }},
		{name: "batch wait negative", edit: func(f *Function) { f.Spec.Batch.Wait = -1 },
			want: "spec.batch.wait: must not be negative, got -1ns"},
		{name: "batch maxBytes", edit: func(f *Function) { f.Spec.Batch.MaxBytes = 1 << 20 }},
		{name: "batch maxBytes too big", edit: func(f *Function) { f.Spec.Batch.MaxBytes = MaxBatchBytes + 1 },
			want: "spec.batch.maxBytes: must be between 0 and 67108864, got 67108865"},
		{name: "kv history zero means one", edit: func(f *Function) { f.Spec.KV[0].History = 0 }},
		{name: "kv history 64", edit: func(f *Function) { f.Spec.KV[0].History = MaxKVHistory }},
		{name: "kv duplicate bucket", edit: func(f *Function) { f.Spec.KV = append(f.Spec.KV, KVBucket{Bucket: "orders_hot", History: 1}) },
			want: `spec.kv[1].bucket: duplicate bucket "orders_hot"`},
		{name: "publishes maxAge default", edit: func(f *Function) { f.Spec.Publishes[0].MaxAge = 0 }},
		{name: "publishes wildcard subjects", edit: func(f *Function) { f.Spec.Publishes[0].Subjects = []string{"orders.*", "audit.>"} }},
		{name: "publishes missing stream", edit: func(f *Function) { f.Spec.Publishes[0].Stream = "" },
			want: "spec.publishes[0].stream: required", wantErrs: ErrRequired},
		{name: "publishes bad stream name", edit: func(f *Function) { f.Spec.Publishes[0].Stream = "OR DERS" },
			want: `spec.publishes[0].stream: invalid stream name "OR DERS": use letters, digits, '_' and '-'`, wantErrs: ErrInvalid},
		{name: "publishes duplicate stream", edit: func(f *Function) {
			f.Spec.Publishes = append(f.Spec.Publishes, Stream{Stream: "ORDERS", Subjects: []string{"orders.other"}, MaxAge: 1})
		},
			want: `spec.publishes[1].stream: duplicate stream "ORDERS"`, wantErrs: ErrInvalid},
		{name: "publishes no subjects", edit: func(f *Function) { f.Spec.Publishes[0].Subjects = nil },
			want: "spec.publishes[0].subjects: required", wantErrs: ErrRequired},
		{name: "publishes bad subject", edit: func(f *Function) { f.Spec.Publishes[0].Subjects = []string{"orders.submit", "orders.>.x"} },
			want: `spec.publishes[0].subjects[1]: invalid subject "orders.>.x": '>' must be the last token`, wantErrs: ErrInvalid},
		{name: "publishes duplicate subject", edit: func(f *Function) { f.Spec.Publishes[0].Subjects = []string{"orders.submit", "orders.submit"} },
			want: `spec.publishes[0].subjects[1]: duplicate subject "orders.submit"`, wantErrs: ErrInvalid},
		{name: "publishes negative maxAge", edit: func(f *Function) { f.Spec.Publishes[0].MaxAge = Age(-time.Hour) },
			want: "spec.publishes[0].maxAge: must not be negative, got -1h0m0s", wantErrs: ErrInvalid},
		{name: "publishes maxAge -1ns is not unlimited", edit: func(f *Function) { f.Spec.Publishes[0].MaxAge = Age(-1) },
			want: "spec.publishes[0].maxAge: must not be negative, got -1ns", wantErrs: ErrInvalid},
		{name: "publishes duplicateWindow", edit: func(f *Function) { f.Spec.Publishes[0].DuplicateWindow = Duration(30 * time.Second) }},
		{name: "publishes duplicateWindow with unlimited maxAge", edit: func(f *Function) {
			f.Spec.Publishes[0].MaxAge, f.Spec.Publishes[0].DuplicateWindow = Unlimited, Duration(time.Hour)
		}},
		{name: "publishes duplicateWindow 100ms", edit: func(f *Function) { f.Spec.Publishes[0].DuplicateWindow = Duration(100 * time.Millisecond) }},
		{name: "publishes duplicateWindow under 100ms", edit: func(f *Function) { f.Spec.Publishes[0].DuplicateWindow = Duration(50 * time.Millisecond) },
			want: "spec.publishes[0].duplicateWindow: must be at least 100ms (or 0 for the default), got 50ms", wantErrs: ErrInvalid},
		{name: "publishes negative duplicateWindow", edit: func(f *Function) { f.Spec.Publishes[0].DuplicateWindow = Duration(-time.Second) },
			want: "spec.publishes[0].duplicateWindow: must not be negative, got -1s", wantErrs: ErrInvalid},
		{name: "publishes duplicateWindow over maxAge", edit: func(f *Function) {
			f.Spec.Publishes[0].MaxAge, f.Spec.Publishes[0].DuplicateWindow = Age(time.Minute), Duration(2*time.Minute)
		},
			want: "spec.publishes[0].duplicateWindow: must not be longer than maxAge 1m0s, got 2m0s", wantErrs: ErrInvalid},
		{name: "config not an object", edit: func(f *Function) { f.Spec.Config = json.RawMessage(`[1]`) },
			want: "spec.config: must be a JSON object"},
		{name: "config invalid JSON", edit: func(f *Function) { f.Spec.Config = json.RawMessage(`{`) },
			want: "spec.config: must be a JSON object"},
		{name: "autoscale request", edit: func(f *Function) {
			f.Spec.Autoscale = &Autoscale{Min: 1, Max: 4, TargetInFlight: 10, Cooldown: Duration(DefaultCooldown)}
		}},
		{name: "autoscale not normalized", edit: func(f *Function) { f.Spec.Autoscale = &Autoscale{Max: 4, TargetInFlight: 10} },
			want: "spec.autoscale.min: must be between 1 and 64, got 0\nspec.autoscale.cooldown: must be at least 1s, got 0s", wantErrs: ErrInvalid},
		{name: "autoscale max missing", edit: func(f *Function) {
			f.Spec.Autoscale = &Autoscale{Min: 1, TargetInFlight: 10, Cooldown: Duration(time.Second)}
		}, want: "spec.autoscale.max: required", wantErrs: ErrRequired},
		{name: "autoscale stream target on a request trigger", edit: func(f *Function) {
			f.Spec.Autoscale = &Autoscale{Min: 1, Max: 2, TargetBacklog: 10, Cooldown: Duration(time.Second)}
		}, want: "spec.autoscale.targetInFlight: required for a request trigger\n" +
			"spec.autoscale.targetBacklog: only allowed with a stream trigger; a request trigger scales on targetInFlight", wantErrs: ErrRequired},
		{name: "autoscale stream", edit: func(f *Function) {
			f.Spec.HTTP = nil
			f.Spec.Trigger = Trigger{Stream: "ORDERS"}
			f.Spec.Replicas = 4
			f.Spec.Autoscale = &Autoscale{Min: 2, Max: 4, TargetBacklog: 100, Cooldown: Duration(time.Second)}
		}},
		{name: "autoscale replicas below min", edit: func(f *Function) {
			f.Spec.Autoscale = &Autoscale{Min: 2, Max: 4, TargetInFlight: 10, Cooldown: Duration(time.Second)}
		}, want: "spec.replicas: with autoscale, the starting count must be between min (2) and max (4), got 1"},
		{name: "two problems", edit: func(f *Function) { f.Kind, f.Spec.Replicas = "", 65 },
			want: "kind: required\nspec.replicas: must be between 0 and 64, got 65"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := valid()
			tt.edit(&f)
			err := f.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("Validate() = %q, want %q", got, tt.want)
			}
			if tt.wantErrs != nil && !errors.Is(err, tt.wantErrs) {
				t.Errorf("Validate() = %v, not wrapping %v", err, tt.wantErrs)
			}
			var fe *FieldError
			if err != nil && !errors.As(err, &fe) {
				t.Errorf("Validate() = %T, want *FieldError inside", err)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	f := Function{Spec: Spec{KV: []KVBucket{{Bucket: "b"}}, Config: json.RawMessage(" { } ")}}
	f.Normalize()
	s := f.Spec
	if s.Concurrency != DefaultConcurrency || s.Timeout.Std() != DefaultTimeout || s.Retry.MaxDeliver != DefaultMaxDeliver ||
		s.Batch.Size != DefaultBatchSize || s.KV[0].History != 1 || s.Config != nil {
		t.Errorf("Normalize() = %+v, want defaults filled and {} dropped", s)
	}
	if s.Replicas != 0 || s.Batch.Wait != 0 || s.Queue != "" {
		t.Errorf("Normalize() touched replicas, batch.wait or queue: %+v", s)
	}
	before := f.Revision()
	f.Normalize()
	if f.Revision() != before {
		t.Error("Normalize is not idempotent")
	}
}

func TestRevision(t *testing.T) {
	base := valid()
	rev := base.Revision()
	if len(rev) != 12 {
		t.Fatalf("Revision() = %q, want 12 hex digits", rev)
	}
	tests := []struct {
		name     string
		edit     func(*Function)
		wantSame bool
	}{
		{name: "unchanged", edit: func(*Function) {}, wantSame: true},
		{name: "config key order and spacing", edit: func(f *Function) { f.Spec.Config = json.RawMessage(`{ "a": [true], "b": 1 }`) }, wantSame: true},
		{name: "defaults left out", edit: func(f *Function) {
			f.Spec.Concurrency, f.Spec.Timeout, f.Spec.Retry.MaxDeliver, f.Spec.Batch.Size, f.Spec.KV[0].History = 0, 0, 0, 0, 0
			f.Spec.Publishes[0].MaxAge = 0
		}, wantSame: true},
		{name: "name", edit: func(f *Function) { f.Metadata.Name = "order-accept-2" }},
		{name: "handler", edit: func(f *Function) { f.Spec.Handler = "orders.accept2" }},
		{name: "subject", edit: func(f *Function) { f.Spec.Trigger.Subject = "fn.orders.accept2" }},
		{name: "queue", edit: func(f *Function) { f.Spec.Queue = "q" }},
		{name: "http method", edit: func(f *Function) { f.Spec.HTTP.Method = "PUT" }},
		{name: "http path", edit: func(f *Function) { f.Spec.HTTP.Path = "/v2/orders" }},
		{name: "http async", edit: func(f *Function) { f.Spec.HTTP.Async = true }},
		{name: "http auth none spelled out", edit: func(f *Function) { f.Spec.HTTP.Auth = AuthNone }, wantSame: true},
		{name: "http auth user", edit: func(f *Function) { f.Spec.HTTP.Auth = AuthUser }},
		{name: "http auth admin", edit: func(f *Function) { f.Spec.HTTP.Auth = AuthAdmin }},
		{name: "no http", edit: func(f *Function) { f.Spec.HTTP = nil }},
		{name: "concurrency", edit: func(f *Function) { f.Spec.Concurrency = 1 }},
		{name: "replicas", edit: func(f *Function) { f.Spec.Replicas = 0 }},
		{name: "timeout", edit: func(f *Function) { f.Spec.Timeout = Duration(3 * time.Second) }},
		{name: "maxDeliver", edit: func(f *Function) { f.Spec.Retry.MaxDeliver = 6 }},
		{name: "backoff", edit: func(f *Function) { f.Spec.Retry.Backoff = []Duration{Duration(2 * time.Second)} }},
		{name: "batch size", edit: func(f *Function) { f.Spec.Batch.Size = 7 }},
		{name: "batch wait", edit: func(f *Function) { f.Spec.Batch.Wait = 0 }},
		{name: "batch maxBytes", edit: func(f *Function) { f.Spec.Batch.MaxBytes = 4096 }},
		{name: "kv ttl", edit: func(f *Function) { f.Spec.KV[0].TTL = Duration(time.Minute) }},
		{name: "kv history", edit: func(f *Function) { f.Spec.KV[0].History = 2 }},
		{name: "publishes stream", edit: func(f *Function) { f.Spec.Publishes[0].Stream = "ORDERS2" }},
		{name: "publishes subjects", edit: func(f *Function) { f.Spec.Publishes[0].Subjects = []string{"orders.>"} }},
		{name: "publishes maxAge", edit: func(f *Function) { f.Spec.Publishes[0].MaxAge = Age(time.Hour) }},
		{name: "no publishes", edit: func(f *Function) { f.Spec.Publishes = nil }},
		{name: "autoscale", edit: func(f *Function) { f.Spec.Autoscale = &Autoscale{Max: 4, TargetInFlight: 10} }},
		{name: "config value", edit: func(f *Function) { f.Spec.Config = json.RawMessage(`{"a":[true],"b":2}`) }},
		{name: "config invalid", edit: func(f *Function) { f.Spec.Config = json.RawMessage(`{`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := valid()
			f.Spec.HTTP = &HTTP{Method: "POST", Path: "/v1/orders"}
			f.Spec.KV = append([]KVBucket(nil), f.Spec.KV...)
			f.Spec.Publishes = append([]Stream(nil), f.Spec.Publishes...)
			tt.edit(&f)
			if got := f.Revision(); (got == rev) != tt.wantSame {
				t.Errorf("Revision() = %s, base %s, want same: %v", got, rev, tt.wantSame)
			}
		})
	}
}

func TestRevisionDoesNotModify(t *testing.T) {
	f := Function{Spec: Spec{KV: []KVBucket{{Bucket: "b"}}, Publishes: []Stream{{Stream: "S", Subjects: []string{"s"}}},
		HTTP: &HTTP{Method: "GET", Path: "/x"}, Autoscale: &Autoscale{Max: 2}, Config: json.RawMessage(`{"b":1, "a":2}`)}}
	f.Revision()
	if f.Spec.Autoscale.Min != 0 || f.Spec.Autoscale.Cooldown != 0 {
		t.Errorf("Revision normalized its receiver's autoscale: %+v", *f.Spec.Autoscale)
	}
	if f.Spec.Concurrency != 0 || f.Spec.HTTP.Auth != "" || f.Spec.KV[0].History != 0 || f.Spec.Publishes[0].MaxAge != 0 || string(f.Spec.Config) != `{"b":1, "a":2}` {
		t.Errorf("Revision modified its receiver: %+v", f.Spec)
	}
}
