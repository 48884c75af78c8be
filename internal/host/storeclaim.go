package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/runtime/wire"
)

// ErrStoreSplit means a runtime host would answer from other data than a
// live host does: two embedded stores, or an embedded store next to a
// shared one. Orders stored by one host would be missing on the other.
var ErrStoreSplit = errors.New("runtime host refused: it would split the store")

// heartbeatTTL is how long a heartbeat stays after its host stopped
// writing it: the TTL of wire.BucketHosts.
const heartbeatTTL = 15 * time.Second

// claimStore checks, before this host serves anything, that every live
// host answers from the same data as this one, and writes this host's
// heartbeat with its store identity. Both happen under a cluster-wide
// lock, so of two hosts starting at once on different stores one sees the
// other. The same store is fine, also a host restarting on its own data
// directory while its dead predecessor's heartbeat is still live.
//
// A failure to reach the buckets (a leader election on a cluster, a server
// restarting) is retried with backoff for up to claimRetry; a split store
// is refused at once.
func (h *Host) claimStore(ctx context.Context) error {
	if h.cfg.StoreIdentity == nil {
		return nil
	}
	deadline := time.Now().Add(claimRetry)
	wait := 250 * time.Millisecond
	for {
		err := h.tryClaimStore(ctx)
		if err == nil || errors.Is(err, ErrStoreSplit) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		h.cfg.Logger.Warn("store check failed; retrying", "err", err, "in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// claimRetry bounds how long claimStore retries JetStream errors.
const claimRetry = 30 * time.Second

func (h *Host) tryClaimStore(ctx context.Context) error {
	mine := h.cfg.StoreIdentity
	unlock, err := takeLock(ctx, h.cfg.JS, h.replication(), "store", "store check")
	if err != nil {
		return err
	}
	defer unlock()
	kv, err := h.cfg.JS.KeyValue(ctx, wire.BucketHosts)
	if err != nil {
		return fmt.Errorf("store check: %w", err)
	}
	statuses, err := ReadStatuses(ctx, h.cfg.JS)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("store check: read host heartbeats: %w", err)
	}
	for _, st := range statuses {
		if st.Host == h.cfg.ID {
			continue
		}
		if st.Store == nil {
			h.cfg.Logger.Warn("a live runtime host does not say which store it uses (an older release?); cannot check that it uses the same as this one",
				"host", st.Host)
			continue
		}
		if err := storeConflict(mine, &st); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(h.Status())
	if _, err := kv.Put(ctx, h.cfg.ID, b); err != nil {
		return fmt.Errorf("store check: write heartbeat: %w", err)
	}
	return nil
}

// storeConflict is ErrStoreSplit, saying why and what to do, when a host
// on mine would answer from other data than the live host st.
func storeConflict(mine *wire.StoreIdentity, st *wire.HostStatus) error {
	theirs := st.Store
	if mine.Backend == theirs.Backend && mine.ID == theirs.ID {
		return nil
	}
	age := time.Since(st.At).Round(time.Second)
	what := func(s *wire.StoreIdentity) string {
		kind := "the shared store " + s.Backend
		if !s.Shared {
			kind = "its own embedded " + s.Backend + " store"
		}
		if s.Where != "" {
			kind += " (" + s.Where + ")"
		}
		return kind
	}
	fix := "run every runtime host with --store vitess (one shared store), or only one runtime host"
	if mine.Shared && theirs.Shared {
		fix = "point every runtime host at the same store"
	}
	return fmt.Errorf("%w: host %s (heartbeat %s ago) answers from %s, and this host would answer from %s, "+
		"so a record written through one host would be missing on the other. To fix it, %s. "+
		"If host %s is stopped, its heartbeat expires within %s of its last one",
		ErrStoreSplit, st.Host, age, what(theirs), what(mine), fix, st.Host, heartbeatTTL)
}
