package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/surgefn/surge/runtime/store"
)

// pingOnly is a backend with no domain at all.
type pingOnly struct{}

func (pingOnly) Ping(context.Context) error { return nil }
func (pingOnly) Close() error               { return nil }

// signInsOnly is a backend of one domain.
type signInsOnly struct{ pingOnly }

func (signInsOnly) SignIn(context.Context, int64, string, string, time.Time) (store.SignIn, bool, error) {
	return store.SignIn{}, true, nil
}

func (signInsOnly) GetSignIn(context.Context, int64, string) (store.SignIn, error) {
	return store.SignIn{}, store.ErrNotFound
}

func TestAs(t *testing.T) {
	if _, err := store.As[store.SignIns](signInsOnly{}); err != nil {
		t.Errorf("As[SignIns] of a sign-in backend: %v", err)
	}
	tests := []struct {
		name string
		s    store.Store
		want []string // in the message
	}{
		{"backend lacks the domain", signInsOnly{}, []string{"store_test.signInsOnly", "store.Messages"}},
		{"no store", nil, []string{"no store", "store.Messages"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store.As[store.Messages](tt.s)
			if !errors.Is(err, store.ErrUnsupported) {
				t.Fatalf("As[Messages] = %v, want store.ErrUnsupported", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("As[Messages] = %q, want it to name %q", err, w)
				}
			}
		})
	}
}

func init() {
	store.Register(store.Backend{ID: "test-ping", Open: func(_ context.Context, oc store.OpenContext, config json.RawMessage) (store.Store, error) {
		var cfg struct {
			Fail bool `json:"fail"`
		}
		if err := store.DecodeConfig(config, &cfg); err != nil {
			return nil, err
		}
		if oc.Logger == nil {
			return nil, errors.New("no logger")
		}
		return pingOnly{}, nil
	}})
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	if _, err := store.Open(ctx, "test-ping", store.OpenContext{}, nil); err != nil {
		t.Errorf("Open with no config: %v", err)
	}
	if _, err := store.Open(ctx, "test-ping", store.OpenContext{}, json.RawMessage(`{"fail":false}`)); err != nil {
		t.Errorf("Open with config: %v", err)
	}
	_, err := store.Open(ctx, "nosuch", store.OpenContext{}, nil)
	if !errors.Is(err, store.ErrUnknownBackend) {
		t.Fatalf("Open of an unknown id = %v, want store.ErrUnknownBackend", err)
	}
	// The registered ids, sorted, as words: this test binary has only its own.
	if want := `unknown store backend "nosuch" (known: test-ping)`; err.Error() != want {
		t.Errorf("Open of an unknown id = %q, want %q", err, want)
	}
}

func TestRegisterPanics(t *testing.T) {
	tests := []struct {
		name string
		b    store.Backend
	}{
		{"empty id", store.Backend{Open: func(context.Context, store.OpenContext, json.RawMessage) (store.Store, error) { return nil, nil }}},
		{"no Open", store.Backend{ID: "test-no-open"}},
		{"duplicate", store.Backend{ID: "test-ping", Open: func(context.Context, store.OpenContext, json.RawMessage) (store.Store, error) { return nil, nil }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Register did not panic")
				}
			}()
			store.Register(tt.b)
		})
	}
}

func TestDecodeConfig(t *testing.T) {
	type cfg struct {
		Shards int    `json:"shards"`
		Name   string `json:"name"`
	}
	tests := []struct {
		name    string
		config  string
		want    cfg
		wantErr string // substring; "" for none
	}{
		{"nil", "", cfg{Shards: 8}, ""},
		{"null", "null", cfg{Shards: 8}, ""},
		{"sets fields", `{"shards":4,"name":"x"}`, cfg{Shards: 4, Name: "x"}, ""},
		{"keeps unset fields", `{"name":"x"}`, cfg{Shards: 8, Name: "x"}, ""},
		{"unknown field", `{"shard":4}`, cfg{}, `unknown field "shard"`},
		{"wrong type", `{"shards":"4"}`, cfg{}, "cannot unmarshal"},
		{"trailing data", `{"shards":4} {}`, cfg{}, "data after"},
		{"not an object", `[4]`, cfg{}, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cfg{Shards: 8}
			err := store.DecodeConfig(json.RawMessage(tt.config), &got)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Errorf("DecodeConfig(%s) = %+v, %v; want %+v", tt.config, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, store.ErrBadConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("DecodeConfig(%s) = %v, want store.ErrBadConfig containing %q", tt.config, err, tt.wantErr)
			}
		})
	}
}
