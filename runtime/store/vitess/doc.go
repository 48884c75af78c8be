// Package vitess is the store backend on a sharded Vitess keyspace, reached
// through vtgate's gRPC API with the Vitess database/sql driver
// (vitess.io/vitess/go/vt/vitessdriver).
//
// # Data model
//
// Each domain's file (orders.go, signins.go, ...) declares the tables it
// uses, their DDL and their primary vindex, next to the code that reads and
// writes them. manifests/vitess/commerce/schema.sql and vschema.json, which
// an operator applies to a new keyspace, are generated from those
// declarations. Open checks that every table exists and creates the ones
// missing from a keyspace that has the others (a domain added since the
// keyspace was set up), where vtgate allows vschema DDL.
//
// A user's rows (orders, sign-ins) live on the shard of hash(user_id), so
// every per-user read (ListOrders, GetSignIn, the streak) is a single-shard
// query. What has no user is keyed by the string it is read by (xxhash), or
// by the stream sequence (hash, which spreads consecutive integers evenly).
//
// Every string is stored as bytes (VARBINARY, BLOB; items and SMS params as
// JSON), so no collation decides which ids are equal and no connection
// character set rewrites text: the test cluster's tablets talk utf8mb3 to
// MariaDB and would turn 4-byte characters into '?' in a text column.
//
// # Writes and transactions
//
// Writes are batched: one multi-row INSERT IGNORE per table for up to
// maxRows rows, which vtgate splits into one statement per shard. Each
// carries the MULTI_SHARD_AUTOCOMMIT directive: every shard's part is
// committed by its tablet as soon as it ran, as a statement on one shard
// is, instead of vtgate opening a transaction on each shard and committing
// them all once the slowest is done. Held that long, a part's row locks
// (and the next-key locks INSERT IGNORE takes on the duplicates it meets)
// made two batches that share orders (a client's retry of an order whose
// ack was lost, a redelivery while the first delivery still runs) each
// hold rows on one shard while waiting for the other's rows on another: a
// deadlock no MySQL can see, which lasted until a caller timed out and
// formed again at the redeliveries. make chaos timed out about a hundred
// batches a run that way, most likely how it once lost a killed host's
// orders (every attempt of them timed out), and
// TestWaitingBatchHoldsNoLocksElsewhere shows the row committed while its
// batch still waits. With the directive vtgate opens no shard
// transaction, so the vtgate's transaction_mode does not apply to these
// statements; each connection still sets it to MULTI, so that a statement
// without the directive does not depend on the vtgate's default (SINGLE
// would refuse it when it spans shards). An atomic commit (TWOPC) would
// mean dropping the directive, setting every tablet up for it (semi-sync
// replication, --twopc-abandon-age) and several extra round trips per
// commit, to buy an atomicity these idempotent writes do not need (see
// below).
//
// No write spans two tables of one user: a batch's order_lookup and orders
// rows, and the counts and markers of an event batch, are on different
// shards by design, and a sign-in is one row. SignIn therefore needs no
// explicit transaction. Its only write is one INSERT IGNORE on the user's
// shard, and the primary key (user_id, day) decides which of any number of
// concurrent calls creates the record; the losers read the winner's row. The
// previous day's row, which the streak is computed from, is never updated,
// so reading it without a lock gives the result of some serial order of
// the calls. (A SELECT ... FOR UPDATE transaction would take gap locks on
// the missing row, and a hundred concurrent first sign-ins would deadlock
// each other.)
//
// # When a batch fails halfway
//
// A multi-row insert that spans shards commits on each shard by itself:
// if it fails on one shard (or the caller's context ends), the shards that
// had run keep their rows, and the call returns the error (a part still
// running may commit after it). vtgate's error then says "transaction
// rolled back to reverse changes of partial DML execution": nothing
// committed was rolled back. The same holds between statements:
// order_lookup claims may be committed while the orders insert fails, and
// event counts may be committed without their markers.
//
// The caller treats the error as a failed batch: the stream consumer does
// not ack it, and JetStream redelivers it. The redelivered batch runs the
// same statements. INSERT IGNORE skips every row already stored (the
// unique keys above), a claim in order_lookup by the same user is
// recognised as that user's own, and the missing rows are inserted, so the
// batch ends up stored exactly once. PutOrders and ApplyEvents count only
// the rows (markers) a successful call added, so each order and each event
// message is reported as new by at most one call: none when the attempt
// that stored it failed (a failed call reports nothing, and the
// redelivery skips the row). Callers use the count for caching and logs
// only; a redelivery refreshes its users' pages whatever it counted.
// Until the redelivery, readers may see part of a batch: an order whose
// lookup row exists without its orders row is reported as not found, as
// it is while a write is in flight.
package vitess
