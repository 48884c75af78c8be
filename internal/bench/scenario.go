package bench

import (
	"context"
	"fmt"
	"sort"
)

// Scenario is one kind of operation to put load on. Run calls Setup once,
// then Do from many goroutines (worker is 0..workers-1, so a scenario can
// keep per-worker state without locks), then Close.
type Scenario interface {
	// Name is the scenario's name as `surge bench` spells it.
	Name() string
	// Setup prepares the scenario for the given number of workers.
	Setup(ctx context.Context, workers int) error
	// Do performs one operation and returns "" on success or the kind of
	// error (see the Kind constants and HTTPKind).
	Do(ctx context.Context, worker int) string
	// Close releases what Setup acquired, also after Setup failed.
	Close() error
}

// Verifier is a Scenario that can check, after the run, that the platform
// did what it acknowledged. Verify may add to the result (persisted rate).
type Verifier interface {
	Verify(ctx context.Context, r *Result) (*Verification, error)
}

// Counter is a Scenario whose operation carries several units of work (an
// events batch): the result reports units per second as well.
type Counter interface {
	// Unit names the unit ("events") and how many one operation carries.
	Unit() (name string, perOp int)
}

// Error kinds an operation can return besides HTTPKind's "http_<code>".
const (
	// KindTimeout is an operation that ran past its deadline.
	KindTimeout = "timeout"
	// KindConn is a failure to connect or a connection lost mid-request.
	KindConn = "conn"
	// KindBadResponse is a success status whose body is not what it must be.
	KindBadResponse = "bad_response"
	// KindNoResponders is a NATS request nobody listens for.
	KindNoResponders = "nats_no_responders"
	// KindStalled is a JetStream async publish that found too many in flight.
	KindStalled = "js_stalled"
	// KindOther is any other error.
	KindOther = "other"
)

// HTTPKind is the error kind of an unexpected HTTP status.
func HTTPKind(status int) string { return fmt.Sprintf("http_%d", status) }

// Scenarios lists the scenario names `surge bench` knows, sorted.
func Scenarios() []string {
	names := []string{"echo", "signin", "events", "orders-http", "orders-nats", "js-raw", "envelope", "sale"}
	sort.Strings(names)
	return names
}
