package platform

import (
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// AutoSyncInterval is how often a single embedded server fsyncs its
// streams by default. nats-server's own default is 2 minutes: it counts on
// replication to keep what an OS crash or a power loss takes from one
// server's page cache, and its docs advise a shorter interval without
// replication. An R1 stream acks a publish once it is written (a process
// crash loses nothing), so a machine crash loses at most this much of the
// accepted intake. Measured on 2 cores, fresh surge ups, alternating,
// against 2 minutes: single-order orders-nats 55.1k and 54.8k orders/s
// against 55.5k and 54.5k; 100-order messages 4790 and 4550 messages/s
// against 4977 and 5024 (5% fewer), persisted 316k and 326k orders/s
// against 337k and 333k. Fsyncing every write took them to 4.5k orders/s
// and 1737 messages/s.
const AutoSyncInterval = time.Second

// SyncAlways is Options.NATSSync's fsync after every write.
const SyncAlways time.Duration = -1

// syncPolicy sets so's fsync policy from Options.NATSSync and returns it,
// for the log. replicated is whether the streams this process creates get
// at least 3 replicas (a cluster node with --replicas auto or 3 to 5):
// only then does auto leave nats-server's default. nats-server advises a
// shorter interval for streams of 2 replicas too.
func syncPolicy(so *server.Options, sync time.Duration, replicated bool) string {
	switch {
	case sync == SyncAlways:
		so.SyncAlways = true
		return "after every write"
	case sync > 0:
		so.SyncInterval = sync
	case !replicated:
		so.SyncInterval = AutoSyncInterval
	default:
		return "nats-server's default (every 2m; the streams are replicated)"
	}
	return "every " + so.SyncInterval.String()
}
