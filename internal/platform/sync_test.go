package platform

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestSyncPolicy: auto fsyncs a single server's streams every second and
// leaves a cluster node on nats-server's default; always and an interval
// are passed on as they are.
func TestSyncPolicy(t *testing.T) {
	tests := []struct {
		name       string
		sync       time.Duration
		cluster    bool
		wantEvery  time.Duration
		wantAlways bool
	}{
		{"auto, single server", 0, false, AutoSyncInterval, false},
		{"auto, cluster node", 0, true, 0, false},
		{"interval", 5 * time.Second, true, 5 * time.Second, false},
		{"always", SyncAlways, false, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var so server.Options
			syncPolicy(&so, tt.sync, tt.cluster)
			if so.SyncInterval != tt.wantEvery || so.SyncAlways != tt.wantAlways {
				t.Fatalf("SyncInterval %s, SyncAlways %t; want %s, %t", so.SyncInterval, so.SyncAlways, tt.wantEvery, tt.wantAlways)
			}
		})
	}
}
