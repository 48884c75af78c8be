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
// maxRows rows, which vtgate splits into one statement per shard. Every
// statement runs in autocommit mode, which vtgate turns into an implicit
// transaction over the shards the statement touches. Each connection sets
// transaction_mode to MULTI, so the outcome does not depend on the
// vtgate's default: SINGLE would refuse every batch that spans shards, and
// TWOPC needs every tablet set up for it (semi-sync replication,
// --twopc-abandon-age) and costs several extra round trips per commit, to
// buy an atomicity these idempotent writes do not need (see below).
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
// A multi-row insert that spans shards is one vtgate transaction with one
// MySQL transaction per shard. If the statement fails on any shard while it
// executes, vtgate rolls back every shard: nothing is stored. If it fails
// while committing, MULTI commits the shards one after another, so the
// shards committed before the failing one keep their rows and the rest have
// none; the call returns the error. The same holds between statements:
// order_lookup claims may be committed while the orders insert fails, and
// event counts may be committed without their markers.
//
// The caller treats the error as a failed batch: the stream consumer does
// not ack it, and JetStream redelivers it. The redelivered batch runs the
// same statements. INSERT IGNORE skips every row already stored (the
// unique keys above), a claim in order_lookup by the same user is
// recognised as that user's own, and the missing rows are inserted, so the
// batch ends up stored exactly once. PutOrders and ApplyEvents count only
// the rows (markers) the redelivery added, so each order and each event
// message is reported as new by exactly one successful call. Until the
// redelivery, readers may see part of a batch: an order whose lookup row
// exists without its orders row is reported as not found, as it is while
// a write is in flight.
package vitess
