package platform

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestSyncPolicy: auto fsyncs every second unless the streams get 3 or
// more replicas, and leaves nats-server's default then; always and an
// interval are passed on as they are.
func TestSyncPolicy(t *testing.T) {
	tests := []struct {
		name       string
		sync       time.Duration
		replicated bool
		wantEvery  time.Duration
		wantAlways bool
		wantDesc   string
	}{
		{"auto, one replica", 0, false, AutoSyncInterval, false, "every 1s"},
		{"auto, replicated", 0, true, 0, false, "nats-server's default"},
		{"interval", 5 * time.Second, true, 5 * time.Second, false, "every 5s"},
		{"always", SyncAlways, false, 0, true, "after every write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var so server.Options
			desc := syncPolicy(&so, tt.sync, tt.replicated)
			if so.SyncInterval != tt.wantEvery || so.SyncAlways != tt.wantAlways {
				t.Fatalf("SyncInterval %s, SyncAlways %t; want %s, %t", so.SyncInterval, so.SyncAlways, tt.wantEvery, tt.wantAlways)
			}
			if !strings.HasPrefix(desc, tt.wantDesc) {
				t.Errorf("described as %q, want %q", desc, tt.wantDesc)
			}
		})
	}
}

func TestNATSSyncValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    Options
		want string
	}{
		{name: "auto, external", o: Options{NATSURL: "nats://127.0.0.1:4222"}},
		{name: "interval, embedded", o: Options{NATSSync: time.Second}},
		{name: "always, embedded", o: Options{NATSSync: SyncAlways}},
		{name: "interval, external", o: Options{NATSSync: time.Second, NATSURL: "nats://127.0.0.1:4222"}, want: "--nats-sync is for the embedded NATS server"},
		{name: "negative", o: Options{NATSSync: -time.Second}, want: "--nats-sync -1s: want auto, always or a positive interval"},
	} {
		t.Run(tt.name, func(t *testing.T) { checkValidate(t, tt.o, tt.want) })
	}
}
