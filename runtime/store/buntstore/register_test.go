package buntstore

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/surgefn/surge/runtime/store"
)

// TestOpenBackend: --store buntdb opens the platform's store directory with
// the shard count of its config, decoded strictly.
func TestOpenBackend(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, err := store.Open(context.Background(), ID, store.OpenContext{Dir: dir}, json.RawMessage(`{"shards":2}`))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if got := len(s.(*Store).shards); got != 2 {
		t.Errorf("%d shards, want 2", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, shardFile(1))); err != nil {
		t.Errorf("shard file not under the store dir: %v", err)
	}
	// No config: the count the directory was created with.
	s, err = store.Open(context.Background(), ID, store.OpenContext{Dir: dir}, nil)
	if err != nil {
		t.Fatalf("reopen with no config: %v", err)
	}
	if got := len(s.(*Store).shards); got != 2 {
		t.Errorf("reopened with %d shards, want the 2 it was created with", got)
	}
	_ = s.Close()

	for _, config := range []string{`{"shards":-1}`, `{"shards":2,"vtgate":"x"}`, `{"shards":"2"}`} {
		_, err := store.Open(context.Background(), ID, store.OpenContext{Dir: t.TempDir()}, json.RawMessage(config))
		if !errors.Is(err, store.ErrBadConfig) || !strings.Contains(err.Error(), "buntstore: config") {
			t.Errorf("Open(%s) = %v, want a buntstore config error wrapping store.ErrBadConfig", config, err)
		}
	}
}
