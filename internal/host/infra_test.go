package host

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/manifests"
)

// natsURL starts a JetStream server for the test (internal/testenv has one
// too, but it imports this package).
func natsURL(t *testing.T) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return ns.ClientURL()
}

func connectJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestMergeSubjects(t *testing.T) {
	tests := []struct {
		name        string
		have, want  []string
		wantMerged  []string
		wantChanged bool
	}{
		{"covered", []string{"x.>"}, []string{"x.a", "x.b.c"}, []string{"x.>"}, false},
		{"added", []string{"x.a"}, []string{"y.a"}, []string{"x.a", "y.a"}, true},
		{"broader replaces what it covers", []string{"x.a", "x.b", "y.a"}, []string{"x.>"}, []string{"y.a", "x.>"}, true},
		{"star", []string{"x.a.b"}, []string{"x.*.b"}, []string{"x.*.b"}, true},
		{"same", []string{"x.a"}, []string{"x.a"}, []string{"x.a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := mergeSubjects(tt.have, tt.want)
			if !slices.Equal(got, tt.wantMerged) || changed != tt.wantChanged {
				t.Errorf("mergeSubjects(%v, %v) = %v, %v; want %v, %v", tt.have, tt.want, got, changed, tt.wantMerged, tt.wantChanged)
			}
		})
	}
}

// TestEnsureStreamUpdates checks what an existing stream becomes: a broader
// subject replaces the ones it covers (JetStream refuses overlaps), the
// stream keeps its own settings, and hosts adding subjects at the same
// moment lose none of them.
func TestEnsureStreamUpdates(t *testing.T) {
	url := natsURL(t)
	js := connectJS(t, url)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WIDE", Subjects: []string{"wide.a"},
		MaxAge: 5 * time.Hour, Duplicates: time.Minute, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	if err := ensureStream(ctx, js, Replication{}, "WIDE", []string{"wide.>"}, time.Hour, 0); err != nil {
		t.Fatalf("widening: %v", err)
	}
	s, err := js.Stream(ctx, "WIDE")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if !slices.Equal(cfg.Subjects, []string{"wide.>"}) {
		t.Errorf("subjects = %v, want [wide.>]", cfg.Subjects)
	}
	if cfg.MaxAge != 5*time.Hour || cfg.Duplicates != time.Minute || cfg.Storage != jetstream.MemoryStorage {
		t.Errorf("settings changed: max age %s, duplicates %s, storage %s", cfg.MaxAge, cfg.Duplicates, cfg.Storage)
	}

	// Concurrent adders, each on its own connection (as hosts are).
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RACE", Subjects: []string{"race.base"}}); err != nil {
		t.Fatal(err)
	}
	const adders = 6
	errs := make(chan error, adders)
	for i := range adders {
		js := connectJS(t, url)
		go func() {
			errs <- ensureStream(ctx, js, Replication{}, "RACE", []string{fmt.Sprintf("race.s%d", i)}, time.Hour, 0)
		}()
	}
	for range adders {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	s, err = js.Stream(ctx, "RACE")
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config.Subjects
	for i := range adders {
		if want := fmt.Sprintf("race.s%d", i); !slices.Contains(got, want) {
			t.Errorf("subject %s lost; stream has %v", want, got)
		}
	}
}

// TestEnsureStreamsDeclaredFirst checks that a stream function which also
// declares its stream under spec.publishes gets the declared settings: a
// ledger consumed by its own store function must not be created with the
// trigger's default max age and lose its oldest messages.
func TestEnsureStreamsDeclaredFirst(t *testing.T) {
	js := connectJS(t, natsURL(t))
	ctx := context.Background()
	fn := streamsFunction("ledger-store")
	fn.Spec.Trigger.Stream = "LEDGER"
	fn.Spec.Trigger.Filter = "ledger.*.take"
	fn.Spec.Publishes = []manifests.Stream{{Stream: "LEDGER", Subjects: []string{"ledger.>"}, MaxAge: manifests.Unlimited}}
	if err := EnsureStreams(ctx, js, fn, Replication{}); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "LEDGER")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxAge != 0 || cfg.Duplicates != 2*time.Minute || !slices.Equal(cfg.Subjects, []string{"ledger.>"}) {
		t.Errorf("LEDGER: max age %s, duplicates %s, subjects %v; want unlimited (0), 2m, [ledger.>]",
			cfg.MaxAge, cfg.Duplicates, cfg.Subjects)
	}
}

// TestEnsureStreamsDuplicateWindow: a publishes entry's duplicateWindow is
// the new stream's de-duplication window, and without one a stream gets
// 2 minutes, or its max age when shorter.
func TestEnsureStreamsDuplicateWindow(t *testing.T) {
	js := connectJS(t, natsURL(t))
	ctx := context.Background()
	fn := streamsFunction("intake")
	fn.Spec.Trigger.Subject = "fn.intake"
	fn.Spec.Publishes = []manifests.Stream{
		{Stream: "SHORT", Subjects: []string{"short.>"}, MaxAge: manifests.Age(time.Hour), DuplicateWindow: manifests.Duration(30 * time.Second)},
		{Stream: "DEFAULT", Subjects: []string{"default.>"}, MaxAge: manifests.Age(time.Hour)},
		{Stream: "YOUNG", Subjects: []string{"young.>"}, MaxAge: manifests.Age(time.Minute)},
	}
	if err := EnsureStreams(ctx, js, fn, Replication{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]time.Duration{"SHORT": 30 * time.Second, "DEFAULT": 2 * time.Minute, "YOUNG": time.Minute} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().Config.Duplicates; got != want {
			t.Errorf("%s: duplicate window %s, want %s", name, got, want)
		}
	}
}

// streamsFunction is a function named name for EnsureStreams, without a
// trigger yet.
func streamsFunction(name string) *manifests.Function {
	fn := &manifests.Function{APIVersion: manifests.APIVersion, Kind: manifests.KindFunction}
	fn.Metadata.Name = name
	fn.Spec.Handler = "x.y"
	return fn
}
