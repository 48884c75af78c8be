package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// MaxReplicas is the most replicas JetStream gives a stream.
const MaxReplicas = 5

// clusterReplicas is what --replicas auto gives on a cluster of 3 or more
// JetStream servers: one server may die, and a majority of two remains.
const clusterReplicas = 3

// Replication is how many replicas the streams and KV buckets surge
// creates get, and where it logs moving an existing one up (or leaving one
// with more replicas alone).
type Replication struct {
	// Replicas is 1 to MaxReplicas; 0 means 1.
	Replicas int
	// Logger receives those logs; nil discards them.
	Logger *slog.Logger
}

func (r Replication) replicas() int { return max(r.Replicas, 1) }

func (r Replication) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// ValidateReplicas checks a --replicas count: 0 (auto) or 1 to MaxReplicas.
func ValidateReplicas(n int) error {
	if n < 0 || n > MaxReplicas {
		return fmt.Errorf("--replicas %d: want auto or 1 to %d (3 survives losing one server of a cluster)", n, MaxReplicas)
	}
	return nil
}

// AutoReplicas is what --replicas auto means on the NATS nc is connected
// to: 1 on a single server, 3 when JetStream can place 3 replicas (a
// cluster of 3 or more servers). A server that is not part of a cluster
// says so in its INFO (no cluster name), which settles it without a
// round trip; on a cluster JetStream itself is asked, by creating a tiny
// memory stream of 3 replicas and deleting it again (retried for up to
// autoPlacementWait while the cluster forms): the servers a client
// learns from INFO (nc.Servers) count listen addresses, not JetStream
// peers, and a node that has no JetStream, or is down, cannot hold a
// replica. On a cluster with fewer than 3 JetStream servers up it returns
// ErrPlacement after autoPlacementWait, which the caller retries: settling
// on 1 would leave every stream and bucket this process creates on one
// server of a degraded cluster for good.
func AutoReplicas(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, log *slog.Logger) (int, error) {
	cluster := nc.ConnectedClusterName()
	if cluster == "" {
		return 1, nil
	}
	// A cluster that is forming (every node started at about the same
	// time) may have a JetStream meta leader that knows only some of its
	// peers yet: no placement is retried for a while before settling on 1.
	deadline := time.Now().Add(autoPlacementWait)
	for {
		n, err := probeReplicas(ctx, js, log)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || !(apiErr.ErrorCode == errCodeNoPeers ||
			apiErr.ErrorCode == errCodeInsufficientResources || apiErr.ErrorCode == errCodeReplicasNotSupported) {
			if err != nil {
				return 0, fmt.Errorf("--replicas auto: asking JetStream of cluster %s whether it can place 3 replicas: %w (pass --replicas N to skip this check)", cluster, err)
			}
			return n, nil
		}
		if apiErr.ErrorCode == errCodeReplicasNotSupported {
			// A cluster whose JetStream is not clustered.
			log.Warn("--replicas auto: this NATS cluster's JetStream is not clustered; streams and buckets get 1 replica",
				"cluster", cluster, "reason", apiErr.Description)
			return 1, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w on NATS cluster %s yet (%s): fewer than 3 JetStream servers are up; "+
				"waiting for them (pass --replicas 1 to run on a cluster of fewer than 3 servers)", ErrPlacement, cluster, apiErr.Description)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("--replicas auto: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// IsNotClustered reports whether err is JetStream refusing more than one
// replica because it is not clustered (a single server).
func IsNotClustered(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeReplicasNotSupported
}

// ErrPlacement is JetStream unable to place 3 replicas on a cluster yet.
var ErrPlacement = errors.New("--replicas auto: JetStream cannot place 3 replicas")

// autoPlacementWait is how long --replicas auto waits for a forming
// cluster to have 3 JetStream peers.
const autoPlacementWait = 10 * time.Second

// probeReplicas creates a memory stream of clusterReplicas replicas and
// deletes it again: clusterReplicas when that worked.
func probeReplicas(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (int, error) {
	name := "surge_replicas_probe_" + nuid.Next()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"_surge.probe." + name},
		Storage: jetstream.MemoryStorage, Replicas: clusterReplicas, MaxMsgs: 1, MaxBytes: 1024})
	if err != nil {
		return 0, err
	}
	if derr := js.DeleteStream(context.WithoutCancel(ctx), name); derr != nil {
		log.Warn("could not delete the replicas probe stream; delete it with nats stream rm", "stream", name, "err", derr)
	}
	return clusterReplicas, nil
}

// The JetStream API errors (nats-server's errors.json) that say a stream
// of 3 replicas cannot be placed, which nats.go has no constants for.
const (
	errCodeNoPeers               jetstream.ErrorCode = 10005 // JSClusterNoPeersErrF: too few servers
	errCodeInsufficientResources jetstream.ErrorCode = 10023 // JSInsufficientResourcesErr
	errCodeReplicasNotSupported  jetstream.ErrorCode = 10074 // JSStreamReplicasNotSupportedErr: not clustered
)

// warnedFewer remembers the assets already warned about having more
// replicas than wanted, so a redeploy does not repeat the warning.
var warnedFewer sync.Map

// wantReplicas is the replica count cfg should have: r's, or cfg's own
// when that is more (surge never moves an asset down). raise is true when
// cfg has fewer.
func (r Replication) wantReplicas(what string, have int) (want int, raise bool) {
	have = max(have, 1)
	want = r.replicas()
	if have > want {
		if _, seen := warnedFewer.LoadOrStore(what, true); !seen {
			r.log().Warn("kept more replicas than --replicas asks: surge never lowers them (nats stream edit --replicas does)",
				"asset", what, "has", have, "replicas", want)
		}
		return have, false
	}
	return want, have < want
}

// ErrReplicas is an asset that has fewer replicas than --replicas asks and
// could not be raised: waiting does not fix it, the operator does.
var ErrReplicas = errors.New("replicas")

// raiseReplicas moves the stream of info up to the replicas r asks for,
// when it has fewer. what names it in logs and errors (a stream, or a KV
// bucket, whose stream is KV_<bucket>). The caller holds the stream's lock
// when other settings may change concurrently.
func (r Replication) raiseReplicas(ctx context.Context, js jetstream.JetStream, what string, info *jetstream.StreamInfo) error {
	want, raise := r.wantReplicas(what, info.Config.Replicas)
	if !raise {
		return nil
	}
	have := max(info.Config.Replicas, 1)
	cfg := info.Config
	cfg.Replicas = want
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return replicasError(what, cfg.Name, have, want, err)
	}
	r.log().Info("replicas raised", "asset", what, "stream", cfg.Name, "from", have, "to", want)
	return nil
}

// replicasError says that raising what (stream name) from have to want
// replicas failed with err, and how to fix it.
func replicasError(what, name string, have, want int, err error) error {
	have = max(have, 1)
	return fmt.Errorf("%w: %s has %d replica(s) and --replicas asks for %d, but raising them failed: %w; "+
		"raise them with `nats stream edit %s --replicas %d` (once the cluster has %d JetStream servers up), or start with --replicas %d",
		ErrReplicas, what, have, want, err, name, want, want, have)
}
