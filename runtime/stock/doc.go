// Package stock is stock on JetStream for functions that sell: reserve N
// units of a key at most once per claim, never below zero, correct across
// goroutines, replicas, hosts and restarts, at any replica count.
//
// Ledger keeps a key's stock as an append-only log of compare-and-set
// messages on a stream (see Ledger): the takes of one process go out
// together, one message for all the takes that arrived while the previous
// one was in flight, so a hot key sells at the stream's message rate
// times the batch instead of at one key's compare-and-set rate, and a
// take message may carry what the takes are for (a flash sale's orders),
// so the units and their record are one write.
//
// Measured, with 64 goroutines taking one unit each of one hot key on an
// embedded file-backed server on 2 shared cores (-benchtime 20000x):
//
//   - Ledger (BenchmarkLedgerReserve, each take carrying a sale order of
//     about 190 bytes): 6.3 µs a take from one process, 16.7 µs with two
//     processes racing on the key.
//   - The KV design it replaced (the key split into 1 to 32 KV buckets,
//     one CAS of a bucket a reservation, claims in the value and in claim
//     keys; git history before the ledger): 97-206 µs with 1 bucket,
//     43-74 µs with 32. It also needed three more writes per sale (the
//     order, the buyer's record, and a reconciler for calls killed between
//     them) and could take twice at the moment a refill met a retry.
//   - One KV compare-and-set alone (BenchmarkAtomicBatch/cas): 25 µs; a
//     JetStream atomic batch of two messages (BenchmarkAtomicBatch/batch,
//     nats-server 2.12+): 3.5 ms at one replica on file storage.
package stock

import "errors"

// Sentinel errors of the package; test with errors.Is.
var (
	// ErrSoldOut means the key holds fewer units than asked for.
	ErrSoldOut = errors.New("stock: sold out")
	// ErrBelowSold means Set was asked for less than is already sold.
	ErrBelowSold = errors.New("stock: total below the units sold")
	// ErrNoStock means the key was never Set.
	ErrNoStock = errors.New("stock: no such key")
	// ErrBadCount means a unit count was not positive (Reserve) or was
	// negative (Set).
	ErrBadCount = errors.New("stock: invalid unit count")
	// ErrLimit means a take would give its holder more than its limit.
	ErrLimit = errors.New("stock: holder limit reached")
)

// Claim is a take: its id and the units it holds. Replayed reports a take
// that was already on the ledger, made by an earlier call with the same
// retry key.
type Claim struct {
	ID       string
	Units    int64
	Replayed bool
}

// Levels is the state of a key: the units it holds and the units sold.
type Levels struct {
	Total int64
	Sold  int64
}

// Remaining is the units not sold yet.
func (l Levels) Remaining() int64 { return l.Total - l.Sold }
